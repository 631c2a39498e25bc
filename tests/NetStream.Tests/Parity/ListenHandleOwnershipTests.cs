using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
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
}
