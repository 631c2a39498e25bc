using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Parity;

/// <summary>
/// A client that resets its connection while a response streams is routine (a closed browser tab). Kestrel's Sockets
/// transport completes its output pipe without an error then, so Kestrel's flush just reports "completed"; an error
/// there makes Kestrel log "Unexpected exception in TimingPipeFlusher.FlushAsync." at Error level.
/// </summary>
public sealed class ResetMidResponseLoggingTests
{
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task A_client_reset_during_a_streamed_response_logs_no_error(bool netStream)
    {
        using var timeout = KestrelApp.Timeout();
        var recorder = new LogRecorder();
        var streaming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var builder = TransportUnderTest.Builder(netStream);
        builder.Logging.AddProvider(recorder);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);

        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var app = builder.Build();
        app.Run(async c =>
        {
            var chunk = new byte[64 * 1024];
            try
            {
                for (var i = 0; i < 10_000 && !c.RequestAborted.IsCancellationRequested; i++)
                {
                    await c.Response.Body.WriteAsync(chunk);
                    streaming.TrySetResult();
                }
            }
            catch (Exception)
            {
                // What the application sees of the reset is not the point here.
            }
            finally
            {
                done.TrySetResult();
            }
        });
        await app.StartAsync(timeout.Token);
        var port = TransportUnderTest.Address(app).Port;

        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            await client.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: t\r\n\r\n"), SocketFlags.None, timeout.Token);
            var buffer = new byte[4096];
            Assert.True(await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0);
            await streaming.Task.WaitAsync(timeout.Token);

            // Reset (SO_LINGER 0) while the server is still writing.
            client.LingerState = new LingerOption(true, 0);
        }

        await done.Task.WaitAsync(timeout.Token);
        await app.StopAsync(timeout.Token);

        var errors = recorder.Entries.Where(e => e.Level >= LogLevel.Error).Select(e => $"[{e.Category}] {e.Message} {e.Exception?.GetType().Name}: {e.Exception?.Message}").ToList();
        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
    }
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task A_connection_handler_that_only_writes_sees_a_peer_reset_as_a_completed_flush(bool netStream)
    {
        using var timeout = KestrelApp.Timeout();
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var outcome = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        var builder = TransportUnderTest.Builder(netStream);

        // A push server: it writes until its flush reports the connection completed, and never reads.
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Run(async connection =>
        {
            var chunk = new byte[64 * 1024];
            try
            {
                for (var i = 0; i < 10_000; i++)
                {
                    var flush = await connection.Transport.Output.WriteAsync(chunk);
                    writing.TrySetResult();
                    if (flush.IsCompleted)
                    {
                        outcome.TrySetResult("completed");
                        return;
                    }
                }

                outcome.TrySetResult("never completed");
            }
            catch (Exception e)
            {
                outcome.TrySetResult($"threw {e.GetType().Name}: {e.Message}");
            }
        })));
        await using var app = builder.Build();
        await app.StartAsync(timeout.Token);
        var port = TransportUnderTest.Address(app).Port;

        using (var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
            Assert.True(await client.ReceiveAsync(new byte[4096], SocketFlags.None, timeout.Token) > 0);
            await writing.Task.WaitAsync(timeout.Token);
            client.LingerState = new LingerOption(true, 0);
        }

        Assert.Equal("completed", await outcome.Task.WaitAsync(timeout.Token));
        await app.StopAsync(timeout.Token);
    }
}
