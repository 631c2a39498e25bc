using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Hooks;

public sealed class HostedHookTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("203.0.113.7"), 4242);

    private static Dictionary<string, string?> Loopback(params (string Key, string Value)[] settings)
    {
        var all = EchoHost.Endpoints("tcp://127.0.0.1:0");
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }

        return all;
    }

    [Fact]
    public async Task Hooks_run_in_registration_order_with_services_from_DI()
    {
        var journal = new Journal();
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns =>
        {
            ns.AddFirstHook(journal)
              .AddAcceptedHook<SecondHook>()
              .AddAcceptedHook(context =>
              {
                  context.Services.GetRequiredService<Journal>().Add("third");
                  return ValueTask.FromResult(AcceptedResult.Pass);
              });
        });

        Assert.Equal("x"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "x"u8.ToArray()));
        Assert.Equal(["first", "second", "third"], journal.Entries);
    }

    [Fact]
    public async Task A_scoped_hook_gets_a_scope_per_connection_that_ends_with_it()
    {
        var probes = new ConcurrentQueue<ScopedProbe>();
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns =>
        {
            ns.Services.AddSingleton(probes);
            ns.Services.AddScoped<ScopedProbe>();
            ns.AddAcceptedHook<ScopedHook>(ServiceLifetime.Scoped);
        });

        await EchoClient.RoundTripAsync(host.EndPoint, "a"u8.ToArray());
        await EchoClient.RoundTripAsync(host.EndPoint, "b"u8.ToArray());

        Assert.Equal(2, probes.Count);
        Assert.NotSame(probes.First(), probes.Last());
        foreach (var probe in probes)
        {
            await probe.Disposed.Task.WaitAsync(Listeners.Timeout);
        }
    }

    [Fact]
    public async Task A_graceful_abort_while_the_hooks_give_back_their_slots_still_ends_with_fin()
    {
        // Abort(null) is Kestrel's graceful close. It may come while the close waits for the hooks' callbacks; the
        // close that follows must be the abort's FIN, not a reset that could destroy what the peer has not read.
        var inCallback = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new ManualResetEventSlim();
        var served = new TaskCompletionSource<ConnectionContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(
            Loopback(),
            server => server.Run(async connection =>
            {
                await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
                served.TrySetResult(connection);
            }),
            ns => ns.AddAcceptedHook(context =>
            {
                context.OnClosed(_ =>
                {
                    inCallback.TrySetResult();
                    gate.Wait(Listeners.Timeout);
                }, null);
                return ValueTask.FromResult(AcceptedResult.Pass);
            }));
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        try
        {
            await inCallback.Task.WaitAsync(Listeners.Timeout);
            (await served.Task).Abort(null!);
        }
        finally
        {
            gate.Set();
        }

        // Reads up to the FIN; a reset throws.
        Assert.Equal("bye"u8.ToArray(), await Listeners.ReceiveAsync(client, 64));
    }

    [Fact]
    public async Task A_new_connection_hook_sets_per_connection_options_and_returns_its_own_connection_type()
    {
        await using var host = await EchoHost.StartAsync(
            Loopback(),
            Replies.Say(connection => $"{connection.GetType().Name}|{connection.RemoteEndPoint}|" +
                $"{connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()!.Socket.NoDelay}"),
            ns => ns.UseNewConnectionHook<NoDelayOffProxied>());

        // The transport's default is TCP_NODELAY on; the hook turned it off for this connection.
        Assert.Equal($"{nameof(ProxiedConnection)}|{Client}|False", await Replies.ReadAsync(host.EndPoint));
    }

    [Theory]
    [InlineData("")]
    [InlineData("aborts it")]
    [InlineData("disposes its socket")]
    public async Task A_new_connection_hook_that_fails_after_making_the_default_connection_costs_only_that_one(string first)
    {
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns =>
        {
            switch (first)
            {
                case "aborts it":
                    ns.UseNewConnectionHook<AbortsThenFails>();
                    break;
                case "disposes its socket":
                    ns.UseNewConnectionHook<DisposesTheSocketThenFails>();
                    break;
                default:
                    ns.UseNewConnectionHook<FailsAfterMakingTheDefault>();
                    break;
            }
        });
        using var refusals = new RefusalRecorder(host.Host.Services);

        // The connection it made is ended, not left running with nobody to end it (RST, unless the hook closed the
        // socket itself), and accepting goes on.
        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        Assert.Equal("new_connection_failed", await refusals.NextAsync());
        Assert.Equal("ok"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "ok"u8.ToArray()));
    }

    [Fact]
    public async Task The_handler_sees_the_replacement_connection()
    {
        await using var host = await EchoHost.StartAsync(
            Loopback(),
            Replies.Say(connection => connection.RemoteEndPoint!.ToString()!),
            ns => ns.AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(new ProxiedConnection(context.Connection, Client)))));

        Assert.Equal(Client.ToString(), await Replies.ReadAsync(host.EndPoint));
    }

    [Fact]
    public async Task Replacement_address_info_reaches_later_hooks_and_the_handler()
    {
        EndPoint? seenByNextHook = null;
        await using var host = await EchoHost.StartAsync(
            Loopback(),
            Replies.Say(connection => $"{connection.Features.Get<AddressInfo>()!.RemoteEndPoint}|{connection.RemoteEndPoint is IPEndPoint { Port: > 0 }}"),
            ns => ns
                .AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(addressInfo: context.AddressInfo with { RemoteEndPoint = Client })))
                .AddAcceptedHook(context =>
                {
                    seenByNextHook = context.AddressInfo.RemoteEndPoint;
                    return ValueTask.FromResult(AcceptedResult.Pass);
                }));

        // The connection itself is unchanged: only its address info was replaced.
        Assert.Equal($"{Client}|True", await Replies.ReadAsync(host.EndPoint));
        Assert.Equal(Client, seenByNextHook);
    }

    [Theory]
    [InlineData(RefusalMode.Reset, "reset")]
    [InlineData(RefusalMode.Close, "fin")]
    public async Task A_refused_connection_is_closed_as_the_hook_chose_and_counted_and_never_reaches_the_handler(RefusalMode mode, string seen)
    {
        var handled = 0;
        await using var host = await EchoHost.StartAsync(
            Loopback(),
            server => server.Run(_ =>
            {
                Interlocked.Increment(ref handled);
                return Task.CompletedTask;
            }),
            ns => ns.AddAcceptedHook(_ => ValueTask.FromResult(AcceptedResult.Refuse("not_today", mode))));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.Equal(seen, await EchoClient.HowTurnedAwayAsync(host.EndPoint));
        Assert.Equal("not_today", await refusals.NextAsync());
        Assert.Equal(0, Volatile.Read(ref handled));
    }

    [Fact]
    public async Task Each_replacement_is_disposed_once_outermost_first_and_one_that_throws_keeps_no_slot()
    {
        var journal = new Journal();
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:MaxConnectionsPerIp", "1"), ("NetStream:Endpoints:E0:MaxConnections", "1")), netStream: ns => ns
            .AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(new DisposeProbe(context.Connection, "inner", journal, throws: true))))
            .AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(new DisposeProbe(context.Connection, "outer", journal)))));

        Assert.Equal("1"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "1"u8.ToArray()));
        await journal.WaitForAsync(2);

        // The slots came back although disposing a replacement failed: the next connection is served.
        Assert.Equal("2"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "2"u8.ToArray()));
        await journal.WaitForAsync(4);
        Assert.Equal(["outer", "inner", "outer", "inner"], journal.Entries);
    }

    [Fact]
    public async Task A_replacement_returned_past_the_time_limit_is_disposed()
    {
        var journal = new Journal();
        var refused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:Timeout", "00:00:00.100")), netStream: ns => ns.AddAcceptedHook(async context =>
        {
            // Ignores the deadline, and returns once the chain has refused the connection.
            await refused.Task;
            return AcceptedResult.Replace(new DisposeProbe(context.Connection, "late", journal));
        }));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        Assert.Equal("hook_timeout", await refusals.NextAsync());
        refused.SetResult();

        await journal.WaitForAsync(1);
        Assert.Equal(["late"], journal.Entries);
    }

    [Fact]
    public async Task A_flood_of_refusals_is_logged_so_many_a_second_and_counted_in_full()
    {
        const int Clients = 200;
        var logs = new LogRecorder();
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns =>
        {
            ns.Services.AddSingleton<ILoggerProvider>(logs);
            ns.AddAcceptedHook(_ => ValueTask.FromResult(AcceptedResult.Refuse("flood")));
        });
        using var refusals = new RefusalRecorder(host.Host.Services);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => EchoClient.IsTurnedAwayAsync(host.EndPoint)));
        for (var i = 0; i < Clients; i++)
        {
            Assert.Equal("flood", await refusals.NextAsync());
        }

        // Each refusal is logged before it is counted: all are in by now.
        var seconds = (int)clock.Elapsed.TotalSeconds + 1;
        var logged = logs.Entries.Count(e => e.EventId == 12);
        Assert.InRange(logged, 1, AcceptedHookChain.RefusalLogsPerSecond * seconds);

        // The rest are summed up at the end of their second, though no refusal follows the flood.
        await logs.WaitUntilAsync(entries => logged + LogRecorder.HeldBack(entries, 18) == Clients, Listeners.Timeout);
    }

    [Fact]
    public async Task A_peer_that_resets_cancels_the_hooks_token_and_keeps_no_slot()
    {
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        // No time limit: only the reset can end the first hook's wait.
        await using var host = await EchoHost.StartAsync(
            Loopback(("NetStream:Hooks:Timeout", "-00:00:00.001"), ("NetStream:Hooks:MaxConnectionsPerIp", "1")),
            netStream: ns => ns.AddAcceptedHook(async context =>
            {
                if (Interlocked.Increment(ref calls) == 1)
                {
                    waiting.SetResult();
                    await WaitForCancellationAsync(context, cancelled);
                }

                return AcceptedResult.Pass;
            }));

        var first = await Listeners.ConnectAsync(host.EndPoint);
        await waiting.Task.WaitAsync(Listeners.Timeout);
        first.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        first.Dispose(); // RST

        await cancelled.Task.WaitAsync(Listeners.Timeout);

        // The slot comes back as the chain ends, just after the hook saw its token cancelled: a refused try may come
        // first, never more than a few.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Assert.Equal("next"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "next"u8.ToArray()));
                break;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 100)
            {
                // Refused (reset): the slot was not back yet.
            }
        }
    }

    [Fact]
    public async Task An_abort_after_the_peers_half_close_cancels_the_hooks_token()
    {
        var finSeen = new TaskCompletionSource<ConnectionContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:Timeout", "-00:00:00.001")), netStream: ns => ns.AddAcceptedHook(async context =>
        {
            context.Connection.ConnectionClosed.Register(() => finSeen.TrySetResult(context.Connection));
            await WaitForCancellationAsync(context, cancelled);
            return AcceptedResult.Pass;
        }));

        using var client = await Listeners.ConnectAsync(host.EndPoint);
        client.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var connection = await finSeen.Task.WaitAsync(Listeners.Timeout);
        connection.Abort();

        await cancelled.Task.WaitAsync(Listeners.Timeout);
    }

    [Fact]
    public async Task A_peer_that_only_half_closes_keeps_the_hooks_token_and_is_served()
    {
        var finSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns => ns.AddAcceptedHook(async context =>
        {
            context.Connection.ConnectionClosed.Register(() => finSeen.TrySetResult());
            await gate.Task.WaitAsync(context.CancellationToken);
            return AcceptedResult.Pass;
        }));

        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await client.SendAsync("request"u8.ToArray());
        client.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        // The FIN has reached the server (ConnectionClosed fired) while the hook waits: it goes on, and is served.
        await finSeen.Task.WaitAsync(Listeners.Timeout);
        gate.SetResult();
        Assert.Equal("request"u8.ToArray(), await Listeners.ReceiveAsync(client, 64));
    }

    [Fact]
    public async Task A_throwing_hook_costs_only_its_own_connection()
    {
        var calls = 0;
        await using var host = await EchoHost.StartAsync(Loopback(), netStream: ns => ns.AddAcceptedHook(_ =>
            Interlocked.Increment(ref calls) == 1
                ? throw new InvalidOperationException("hook bug")
                : ValueTask.FromResult(AcceptedResult.Pass)));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        Assert.Equal("hook_failed", await refusals.NextAsync());
        Assert.Equal("ok"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "ok"u8.ToArray()));
    }

    [Fact]
    public async Task A_hanging_hook_on_one_connection_does_not_delay_a_hundred_others()
    {
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hanging = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        // No time limit: only the test's own timeouts bound the wait.
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:Timeout", "-00:00:00.001")), netStream: ns => ns.AddAcceptedHook(async _ =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                hanging.SetResult();
                await hang.Task;
            }

            return AcceptedResult.Pass;
        }));

        using var stuck = await Listeners.ConnectAsync(host.EndPoint);
        await hanging.Task.WaitAsync(Listeners.Timeout);

        var others = Enumerable.Range(0, 100).Select(async i =>
        {
            var data = EchoClient.RandomBytes(16 + i);
            Assert.Equal(data, await EchoClient.RoundTripAsync(host.EndPoint, data));
        });
        await Task.WhenAll(others).WaitAsync(Listeners.Timeout);

        // Released, the first connection is served as well.
        hang.SetResult();
        Assert.Equal("late"u8.ToArray(), await EchoClient.RoundTripAsync(stuck, "late"u8.ToArray()));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_chain_past_its_time_limit_is_refused(bool hookHonoursTheToken)
    {
        var never = new TaskCompletionSource<AcceptedResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:Timeout", "00:00:00.200")), netStream: ns => ns.AddAcceptedHook(async context =>
            hookHonoursTheToken ? await never.Task.WaitAsync(context.CancellationToken) : await never.Task));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        Assert.Equal("hook_timeout", await refusals.NextAsync());
    }

    [Fact]
    public async Task A_refused_unix_socket_client_is_named_as_one_in_the_log()
    {
        var logs = new LogRecorder();
        await using var refusing = await EchoHost.StartAsync(
            EchoHost.Endpoints("unix:" + Path.Combine(Listeners.TempDirectory(), "r.sock")),
            netStream: ns =>
            {
                ns.Services.AddSingleton<ILoggerProvider>(logs);
                ns.AddAcceptedHook(_ => ValueTask.FromResult(AcceptedResult.Refuse("go_away")));
            });
        using var refusals = new RefusalRecorder(refusing.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(refusing.EndPoint));
        await refusals.NextAsync();

        var entry = Assert.Single(logs.Entries, e => e.EventId == 12);
        Assert.Contains(" from an unnamed Unix socket peer refused by ", entry.Message);
    }

    [Theory]
    [InlineData("refuses", 12, LogLevel.Information, "refused by the accepted hook HostedHookTests (lambda)")]
    [InlineData("throws", 13, LogLevel.Warning, "failed on connection")]
    [InlineData("hangs", 14, LogLevel.Warning, "passed the chain's time limit of 200 ms")]
    public async Task Refusals_and_hook_failures_are_logged_with_the_connection_and_the_reason(string what, int eventId, LogLevel level, string text)
    {
        var logs = new LogRecorder();
        var never = new TaskCompletionSource<AcceptedResult>();
        await using var host = await EchoHost.StartAsync(Loopback(("NetStream:Hooks:Timeout", "00:00:00.200")), netStream: ns =>
        {
            ns.Services.AddSingleton<ILoggerProvider>(logs);
            ns.AddAcceptedHook(async _ => what switch
            {
                "refuses" => AcceptedResult.Refuse("go_away"),
                "throws" => throw new InvalidOperationException("hook bug"),
                _ => await never.Task,
            });
        });
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        await refusals.NextAsync();

        var entry = Assert.Single(logs.Entries, e => e.Category == "NetStream.Hooks");
        Assert.Equal((eventId, level), (entry.EventId, entry.Level));
        Assert.Contains(text, entry.Message);
        Assert.Contains("127.0.0.1:", entry.Message);
        Assert.Equal(what == "refuses", entry.Message.EndsWith(": go_away.", StringComparison.Ordinal));
        Assert.Equal(what == "throws", entry.Exception is InvalidOperationException);
    }

    [Fact]
    public async Task Hooks_in_an_endpoint_section_fail_start_up_with_where_they_belong()
    {
        var settings = Loopback(("NetStream:Endpoints:E0:Hooks:MaxConnectionsPerIp", "3"));
        var error = await EchoHost.StartFailsAsync(settings);
        Assert.Contains("NetStream:Endpoints:E0:Hooks", error.Message);
        Assert.Contains("NetStream:Hooks", error.Message);
    }

    /// <summary>Waits for the hook's token, says when it was cancelled, and fails as a cancelled hook does.</summary>
    private static async Task WaitForCancellationAsync(AcceptedContext context, TaskCompletionSource cancelled)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            cancelled.SetResult();
            throw;
        }
    }

    /// <summary>Makes the default connection, and then fails on the first.</summary>
    private class FailsAfterMakingTheDefault : INewConnectionHook
    {
        private int _calls;

        public ConnectionContext NewConnection(System.Net.Sockets.Socket socket, NewConnectionContext context)
        {
            var connection = context.CreateDefault(socket);
            if (Interlocked.Increment(ref _calls) == 1)
            {
                BeforeFailing(connection);
                throw new InvalidOperationException("hook bug");
            }

            return connection;
        }

        protected virtual void BeforeFailing(ConnectionContext connection)
        {
        }
    }

    /// <summary>As <see cref="FailsAfterMakingTheDefault"/>, closing the connection (and its socket) first.</summary>
    private sealed class AbortsThenFails : FailsAfterMakingTheDefault
    {
        protected override void BeforeFailing(ConnectionContext connection) => connection.Abort();
    }

    /// <summary>As <see cref="FailsAfterMakingTheDefault"/>, disposing the socket under the connection first.</summary>
    private sealed class DisposesTheSocketThenFails : FailsAfterMakingTheDefault
    {
        protected override void BeforeFailing(ConnectionContext connection) =>
            connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()!.Socket.Dispose();
    }

    private sealed class NoDelayOffProxied : INewConnectionHook
    {
        public ConnectionContext NewConnection(System.Net.Sockets.Socket socket, NewConnectionContext context)
        {
            socket.NoDelay = false;
            return new ProxiedConnection(context.CreateDefault(socket), Client, ownsInner: true);
        }
    }

    private sealed class ScopedProbe : IDisposable
    {
        public TaskCompletionSource Disposed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Dispose() => Disposed.TrySetResult();
    }

    private sealed class ScopedHook(ScopedProbe probe, ConcurrentQueue<ScopedProbe> probes) : IAcceptedHook
    {
        public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
        {
            probes.Enqueue(probe);
            return ValueTask.FromResult(AcceptedResult.Pass);
        }
    }
}
