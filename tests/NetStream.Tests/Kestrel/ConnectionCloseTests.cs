using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class ConnectionCloseTests
{
    private static readonly byte[] Request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: t\r\n\r\n");

    [Fact]
    public async Task Stopping_the_app_closes_idle_keep_alive_connections_with_fin()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(c => c.Response.WriteAsync("ok")), timeout.Token);
        using var socket = new Socket(app.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(app.EndPoint, timeout.Token);
        await socket.SendAsync(Request, SocketFlags.None, timeout.Token);
        var response = await ReadUntilAsync(socket, "\r\n0\r\n\r\n", timeout.Token);
        Assert.StartsWith("HTTP/1.1 200 OK", response, StringComparison.Ordinal);

        await app.StopAsync();

        // A graceful close: the next read sees end of stream, not a reset.
        var buffer = new byte[64];
        Assert.Equal(0, await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token));
    }

    [Fact]
    public async Task A_client_that_half_closes_after_its_response_gets_fin_not_reset()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(c => c.Response.WriteAsync("ok")), timeout.Token);

        // Kestrel answers the client's FIN with Abort(null), its graceful close: racy, so many times over.
        for (var i = 0; i < 300; i++)
        {
            using var socket = new Socket(app.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(app.EndPoint, timeout.Token);
            await socket.SendAsync(Request, SocketFlags.None, timeout.Token);
            await ReadUntilAsync(socket, "\r\n0\r\n\r\n", timeout.Token);
            socket.Shutdown(SocketShutdown.Send);

            Assert.Equal(0, await socket.ReceiveAsync(new byte[64], SocketFlags.None, timeout.Token));
        }
    }

    [Fact]
    public async Task A_client_that_goes_away_aborts_its_request()
    {
        using var timeout = KestrelApp.Timeout();
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(async c =>
        {
            // A long poll: nothing to write until the client is gone.
            c.RequestAborted.Register(() => aborted.TrySetResult());
            waiting.TrySetResult();
            await aborted.Task;
        }), timeout.Token);
        var socket = new Socket(app.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(app.EndPoint, timeout.Token);
        await socket.SendAsync(Request, SocketFlags.None, timeout.Token);
        await waiting.Task.WaitAsync(timeout.Token);

        socket.Dispose();

        await aborted.Task.WaitAsync(timeout.Token);
    }

    [Fact]
    public async Task Aborting_the_request_resets_the_connection()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(c =>
        {
            c.Abort();
            return Task.CompletedTask;
        }), timeout.Token);
        using var socket = new Socket(app.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(app.EndPoint, timeout.Token);
        await socket.SendAsync(Request, SocketFlags.None, timeout.Token);

        // NetStream closes an aborted connection with SO_LINGER 0: the peer gets RST, not a response nor a FIN.
        var buffer = new byte[64];
        var reset = await Assert.ThrowsAsync<SocketException>(async () => await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    private static async Task<string> ReadUntilAsync(Socket socket, string terminator, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (!text.ToString().EndsWith(terminator, StringComparison.Ordinal))
        {
            var count = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            Assert.True(count > 0, $"the connection closed early after: {text}");
            text.Append(Encoding.ASCII.GetString(buffer, 0, count));
        }

        return text.ToString();
    }
}
