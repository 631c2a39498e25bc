using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Parity;

/// <summary>
/// Kestrel's Sockets transport does not let a connection's DisposeAsync (and so the server's StopAsync) finish before
/// the callbacks registered on <c>ConnectionClosed</c> have run: its receive loop waits for them. Cleanup code in such
/// callbacks (releasing a lock, recording presence) may rely on it to finish before the host disposes its services.
/// </summary>
public sealed class ConnectionClosedBeforeStopTests
{
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task Stop_waits_for_the_connection_closed_callbacks(bool netStream)
    {
        using var timeout = KestrelApp.Timeout();
        var callbackStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();

        var builder = TransportUnderTest.Builder(netStream);

        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Use(next => connection =>
        {
            connection.ConnectionClosed.Register(() =>
            {
                // Cleanup that takes a while (bounded, so that a failing test cannot hang).
                callbackStarted.TrySetResult();
                release.Wait(KestrelApp.TestTimeout);
            });
            return next(connection);
        })));
        await using var app = builder.Build();
        app.Run(c => c.Response.WriteAsync("ok"));
        await app.StartAsync(timeout.Token);
        var port = TransportUnderTest.Address(app).Port;

        // One keep-alive connection, idle after its response.
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
        await client.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: t\r\n\r\n"), SocketFlags.None, timeout.Token);
        Assert.True(await client.ReceiveAsync(new byte[4096], SocketFlags.None, timeout.Token) > 0);

        var stopping = app.StopAsync(timeout.Token);
        await callbackStarted.Task.WaitAsync(timeout.Token);

        // The callback is blocked: Stop must not be over yet. A window: a stop that does not wait ends in milliseconds.
        var first = await Task.WhenAny(stopping, Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token));
        var stoppedDuringCallback = first == stopping;
        release.Set();
        await stopping;

        Assert.False(stoppedDuringCallback, "StopAsync returned while a ConnectionClosed callback was still running");
    }
}
