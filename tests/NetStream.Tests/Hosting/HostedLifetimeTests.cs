using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NetStream.Hosting.Internal;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

public sealed class HostedLifetimeTests
{
    [Fact]
    public async Task A_throwing_handler_costs_only_its_connection_and_the_next_is_served()
    {
        var calls = 0;
        await using var host = await EchoHost.StartAsync(
            EchoHost.Endpoints("tcp://127.0.0.1:0"),
            server => server.Run(async connection =>
            {
                if (Interlocked.Increment(ref calls) == 1)
                {
                    await connection.Transport.Input.ReadAsync(connection.ConnectionClosed);
                    throw new InvalidOperationException("handler failure (expected by the test)");
                }

                await TestEcho.EchoAsync(connection);
            }));

        using (var failing = await Listeners.ConnectAsync(host.EndPoint))
        {
            await failing.SendAsync("x"u8.ToArray());
            Assert.True(await EchoClient.SeesCloseAsync(failing));
        }

        var echoed = await EchoClient.RoundTripAsync(host.EndPoint, "still served"u8.ToArray());
        Assert.Equal("still served", Encoding.ASCII.GetString(echoed));
    }

    [Fact]
    public async Task Stop_unbinds_at_once_but_lets_an_in_flight_echo_finish()
    {
        var host = await EchoHost.StartAsync("tcp://127.0.0.1:0");
        await using var _ = host;
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        var sent = new List<byte>();
        var first = EchoClient.RandomBytes(1024);
        Assert.Equal(first, await EchoClient.EchoOnceAsync(client, first));
        sent.AddRange(first);

        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        var stop = host.StopAsync(timeout.Token);

        // Wait for the listener to go: new connects are refused while the old connection still runs.
        while (true)
        {
            timeout.Token.ThrowIfCancellationRequested();
            var error = await Record.ExceptionAsync(async () =>
            {
                using var probe = await Listeners.ConnectAsync(host.EndPoint);
            });
            if (error is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
                break;
            }

            await Task.Delay(10, timeout.Token);
        }

        Assert.False(stop.IsCompleted, "stop did not wait for the running connection");
        var more = new List<byte>();
        for (var i = 0; i < 4; i++)
        {
            var chunk = EchoClient.RandomBytes(16 * 1024);
            more.AddRange(chunk);
        }

        var rest = await EchoClient.RoundTripAsync(client, [.. more]);
        Assert.True(more.ToArray().AsSpan().SequenceEqual(rest), "the echo during stop differs from what was sent");

        await stop.WaitAsync(Listeners.Timeout);
        var refused = await Assert.ThrowsAsync<SocketException>(() => Listeners.ConnectAsync(host.EndPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task Shutdown_timeout_aborts_a_handler_that_never_ends()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ShutdownTimeout"] = "00:00:00.5";
        var host = await EchoHost.StartAsync(settings, server => server.Run(_ =>
        {
            entered.TrySetResult();
            return never.Task;
        }));
        await using var _ = host;
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await entered.Task.WaitAsync(Listeners.Timeout);

        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        await host.StopAsync(timeout.Token).WaitAsync(Listeners.Timeout);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"stop took {clock.Elapsed}");
        Assert.True(await EchoClient.SeesCloseAsync(client));
    }

    [Fact]
    public async Task A_handler_ended_by_the_shutdown_abort_is_not_logged_as_failed()
    {
        var logs = new LogRecorder();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ShutdownTimeout"] = "00:00:00.2";
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ended = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await EchoHost.StartAsync(
            settings,
            server => server.Run(async connection =>
            {
                // Reads until the input ends, as most handlers do: the abort ends it with a ConnectionAbortedException.
                reading.TrySetResult();
                try
                {
                    while (true)
                    {
                        var result = await connection.Transport.Input.ReadAsync();
                        connection.Transport.Input.AdvanceTo(result.Buffer.End);
                        if (result.IsCompleted)
                        {
                            return;
                        }
                    }
                }
                catch (Exception e)
                {
                    ended.TrySetResult(e);
                    throw;
                }
            }),
            ns => ns.Services.AddSingleton<ILoggerProvider>(logs));
        await using var _ = host;
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await reading.Task.WaitAsync(Listeners.Timeout);

        // The client stays: the handler waits to read until the stop aborts it.
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        await host.StopAsync(timeout.Token).WaitAsync(Listeners.Timeout);

        Assert.IsType<ConnectionAbortedException>(await ended.Task.WaitAsync(Listeners.Timeout));
        Assert.DoesNotContain(logs.Entries, e => e.EventId == 104);
    }

    [Fact]
    public async Task Stop_keeps_within_the_hosts_shutdown_timeout_when_it_is_the_shorter()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ShutdownTimeout"] = "00:00:30";
        var host = await EchoHost.StartAsync(
            settings,
            server => server.Run(_ =>
            {
                entered.TrySetResult();
                return never.Task;
            }),
            ns => ns.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2)));
        await using var _ = host;
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await entered.Task.WaitAsync(Listeners.Timeout);

        var clock = Stopwatch.StartNew();
        await host.StopAsync().WaitAsync(Listeners.Timeout);

        // Drained for 1.6 s, then 0.4 s for the aborted handler (which ignores it); the host's 2 s are the budget.
        // Unbounded by the host, the stop took 2 s and then the fixed 5 s for aborted connections.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4.5), $"stop took {clock.Elapsed}");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.5), $"stop took {clock.Elapsed}");
        Assert.True(await EchoClient.SeesCloseAsync(client));
    }

    [Theory]
    [InlineData(30, 2, 1.6, 0.4)]
    [InlineData(1, 30, 1, 5)]
    [InlineData(10, 100, 10, 5)]
    [InlineData(0, 30, 0, 5)]
    public void Stop_drains_within_the_hosts_shutdown_timeout(double serverSeconds, double hostSeconds, double drainSeconds, double graceSeconds)
    {
        var (drain, grace) = NetStreamServer.ShutdownBudget(TimeSpan.FromSeconds(serverSeconds), TimeSpan.FromSeconds(hostSeconds));

        Assert.Equal((TimeSpan.FromSeconds(drainSeconds), TimeSpan.FromSeconds(graceSeconds)), (drain, grace));
    }

    [Theory]
    [InlineData("NetStream:MaxConnections")]
    [InlineData("NetStream:Endpoints:E0:MaxConnections")]
    public async Task Max_connections_one_holds_the_second_client_in_the_backlog_until_the_first_leaves(string limitKey)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings[limitKey] = "1";
        await using var host = await EchoHost.StartAsync(settings);
        await SecondWaitsUntilFirstLeavesAsync(host.EndPoint, host.EndPoint);
    }

    [Fact]
    public async Task The_server_wide_limit_counts_connections_not_endpoints_waiting_for_one()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
        settings["NetStream:MaxConnections"] = "1";
        await using var host = await EchoHost.StartAsync(settings);

        // One client at a time, each gone before the next: never over the limit, so each is served, whichever
        // endpoint it picks (an idle endpoint's accept loop once kept the only slot).
        foreach (var endPoint in new[] { host.EndPoints[0], host.EndPoints[0], host.EndPoints[1], host.EndPoints[0] })
        {
            using var client = await Listeners.ConnectAsync(endPoint);
            Assert.Equal("x"u8.ToArray(), await EchoClient.EchoOnceAsync(client, "x"u8.ToArray()).WaitAsync(Listeners.Timeout));
            client.Shutdown(SocketShutdown.Send);
            Assert.True(await EchoClient.SeesCloseAsync(client));
        }

        // And the limit spans endpoints: a client of the other one waits while one is served.
        await SecondWaitsUntilFirstLeavesAsync(host.EndPoints[0], host.EndPoints[1]);
    }

    /// <summary>At a limit of one connection: a second client waits in the backlog while the first is served, then is served.</summary>
    private static async Task SecondWaitsUntilFirstLeavesAsync(System.Net.EndPoint firstEndPoint, System.Net.EndPoint secondEndPoint)
    {
        var first = await Listeners.ConnectAsync(firstEndPoint);
        Assert.Equal("a"u8.ToArray(), await EchoClient.EchoOnceAsync(first, "a"u8.ToArray()));
        using var second = await Listeners.ConnectAsync(secondEndPoint); // the kernel's backlog takes it
        await second.SendAsync("b"u8.ToArray());
        var reply = Listeners.ReceiveAsync(second, 1);

        // A negative check needs a window: it can only pass wrongly (a broken limit answering late), never fail wrongly.
        Assert.NotSame(reply, await Task.WhenAny(reply, Task.Delay(300)));

        first.Shutdown(SocketShutdown.Send);
        Assert.True(await EchoClient.SeesCloseAsync(first));
        first.Dispose();
        Assert.Equal("b"u8.ToArray(), await reply.WaitAsync(Listeners.Timeout));
    }

    [Fact]
    public async Task Stop_at_the_connection_limit_still_aborts_after_the_shutdown_timeout()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:MaxConnections"] = "1";
        settings["NetStream:ShutdownTimeout"] = "00:00:00.5";
        var host = await EchoHost.StartAsync(settings);
        await using var _ = host;
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        Assert.Equal("a"u8.ToArray(), await EchoClient.EchoOnceAsync(client, "a"u8.ToArray()));

        // The client stays connected and idle: the accept loop waits for a free slot.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stop = host.StopAsync(timeout.Token);

        await stop.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(await EchoClient.SeesCloseAsync(client));
    }

    [Fact]
    public async Task Stop_removes_the_unix_socket_file()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "e.sock");
        var host = await EchoHost.StartAsync("unix:" + path);
        await using var _ = host;
        Assert.True(File.Exists(path));
        Assert.Equal("hi"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "hi"u8.ToArray()));

        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        await host.StopAsync(timeout.Token);

        Assert.False(File.Exists(path));
    }
}
