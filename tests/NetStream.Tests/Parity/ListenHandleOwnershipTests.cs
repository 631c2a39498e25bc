using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Parity;

/// <summary>
/// Kestrel's <c>ListenHandle</c> borrows the descriptor: the Sockets transport wraps it with <c>ownsHandle: false</c>
/// (SocketTransportOptions.CreateDefaultBoundListenSocket), so stopping the server leaves the caller's socket open
/// and listening, and the caller's own Dispose is the one close. A transport that closes it makes that Dispose a
/// second close of a descriptor number the process may have reused meanwhile.
/// </summary>
public sealed class ListenHandleOwnershipTests
{
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task Stopping_the_server_leaves_the_callers_listening_socket_open(bool netStream)
    {
        using var timeout = KestrelApp.Timeout();
        var mine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        mine.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        mine.Listen();
        var endPoint = (IPEndPoint)mine.LocalEndPoint!;

        var builder = TransportUnderTest.Builder(netStream);

        builder.WebHost.ConfigureKestrel(k => k.ListenHandle((ulong)mine.SafeHandle.DangerousGetHandle()));
        await using (var app = builder.Build())
        {
            app.Run(c => c.Response.WriteAsync("ok"));
            await app.StartAsync(timeout.Token);
            using var client = new HttpClient { Timeout = KestrelApp.TestTimeout };
            Assert.Equal("ok", await client.GetStringAsync($"http://{endPoint}/", timeout.Token));
            await app.StopAsync(timeout.Token);
        }

        // Still ours and still listening: the kernel completes a connect into its backlog.
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        SocketError outcome;
        try
        {
            await probe.ConnectAsync(endPoint, timeout.Token);
            outcome = SocketError.Success;
        }
        catch (SocketException e)
        {
            outcome = e.SocketErrorCode;
        }

        if (outcome == SocketError.Success)
        {
            mine.Dispose();
        }
        else
        {
            // The transport closed our descriptor: never close its number a second time (nor let a finalizer do it).
            GC.SuppressFinalize(mine.SafeHandle);
            GC.SuppressFinalize(mine);
        }

        Assert.Equal(SocketError.Success, outcome);
    }

    /// <summary>
    /// Disposing a socket that owns its descriptor while an accept is pending closes it abortively: SO_LINGER {on, 0}
    /// on the listening socket, which the application's descriptor shares, and every connection it accepts from it
    /// later inherits (they reset instead of closing).
    /// </summary>
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task Unbinding_with_an_accept_pending_leaves_the_callers_socket_options_untouched(bool netStream)
    {
        using var mine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        mine.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        mine.Listen();
        var handle = new FileHandleEndPoint((ulong)mine.SafeHandle.DangerousGetHandle(), FileHandleType.Tcp);
        IConnectionListener listener = netStream
            ? await Listeners.BindAsync(handle)
            : await new SocketTransportFactory(Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance).BindAsync(handle);

        // A window for the accept to reach the socket engine: if it has not, the test passes without proving anything.
        var pending = listener.AcceptAsync(Listeners.TimeoutToken()).AsTask();
        await Task.Delay(100);
        await listener.UnbindAsync();
        await listener.DisposeAsync();
        Assert.Null(await pending.WaitAsync(Listeners.Timeout));
        Assert.False(mine.LingerState!.Enabled, $"The caller's listening socket now has SO_LINGER {{on, {mine.LingerState.LingerTime}}}.");

        // And so a connection it accepts itself still closes with FIN, its last byte delivered.
        using var client = await Listeners.ConnectAsync(mine.LocalEndPoint!);
        using (var accepted = await mine.AcceptAsync(Listeners.TimeoutToken()))
        {
            await accepted.SendAsync(new byte[] { 42 }, SocketFlags.None);
        }

        Assert.Equal(new byte[] { 42 }, await Listeners.ReceiveAsync(client, 1));
        Assert.Equal(0, await client.ReceiveAsync(new byte[1], SocketFlags.None));
    }
}
