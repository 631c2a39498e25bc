using System.Net;
using System.Net.Sockets;
using NetStream.Tests.Hosting;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Hooks;

/// <summary>The built-in <c>accepted</c> hooks, configured only through <c>NetStream:Hooks</c>.</summary>
public sealed class BuiltInHookTests
{
    private static readonly byte[] Ping = "ping"u8.ToArray();

    /// <summary>A dual-mode endpoint, so one host sees both an IPv4 (127.0.0.1) and an IPv6 (::1) peer.</summary>
    private static Task<EchoHost> StartDualModeAsync(params (string Key, string Value)[] hooks)
    {
        var settings = EchoHost.Endpoints("tcp://[::]:0");
        foreach (var (key, value) in hooks)
        {
            settings["NetStream:Hooks:" + key] = value;
        }

        return EchoHost.StartAsync(settings);
    }

    private static IPEndPoint V4(EchoHost host) => new(IPAddress.Loopback, ((IPEndPoint)host.EndPoint).Port);

    private static IPEndPoint V6(EchoHost host) => new(IPAddress.IPv6Loopback, ((IPEndPoint)host.EndPoint).Port);

    [Fact]
    public async Task Deny_list_refuses_matching_IPv4_peers_and_serves_the_rest()
    {
        await using var host = await StartDualModeAsync(("Deny:0", "127.0.0.0/8"));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.True(await EchoClient.IsTurnedAwayAsync(V4(host)));
        Assert.Equal("ip_denied", await refusals.NextAsync());
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V6(host), Ping));
    }

    [Theory]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("::ffff:127.0.0.0/104")]
    public async Task Deny_entries_written_as_IPv4_mapped_IPv6_refuse_the_IPv4_peer(string entry)
    {
        await using var host = await StartDualModeAsync(("Deny:0", entry));

        Assert.True(await EchoClient.IsTurnedAwayAsync(V4(host)));
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V6(host), Ping));
    }

    [Fact]
    public async Task Deny_list_refuses_matching_IPv6_peers_and_serves_the_rest()
    {
        await using var host = await StartDualModeAsync(("Deny:0", "::1"));

        Assert.True(await EchoClient.IsTurnedAwayAsync(V6(host)));
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V4(host), Ping));
    }

    [Fact]
    public async Task Allow_list_serves_only_the_listed_IPv6_network()
    {
        await using var host = await StartDualModeAsync(("Allow:0", "::1/128"));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V6(host), Ping));
        Assert.True(await EchoClient.IsTurnedAwayAsync(V4(host)));
        Assert.Equal("ip_denied", await refusals.NextAsync());
    }

    [Fact]
    public async Task Deny_wins_over_allow()
    {
        await using var host = await StartDualModeAsync(("Allow:0", "127.0.0.0/8"), ("Allow:1", "::1"), ("Deny:0", "127.0.0.1"));

        Assert.True(await EchoClient.IsTurnedAwayAsync(V4(host)));
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V6(host), Ping));
    }

    [Fact]
    public async Task Unix_socket_peers_have_no_address_and_pass_the_lists()
    {
        var settings = EchoHost.Endpoints("unix:" + Path.Combine(Listeners.TempDirectory(), "h.sock"));
        settings["NetStream:Hooks:Deny:0"] = "0.0.0.0/0";
        settings["NetStream:Hooks:Deny:1"] = "::/0";
        await using var host = await EchoHost.StartAsync(settings);

        Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoint, Ping));
    }

    [Theory]
    [InlineData("10.0.0.1/8")]
    [InlineData("10.0.0.0/33")]
    [InlineData("fd00::/129")]
    [InlineData("not-an-address")]
    public async Task A_malformed_network_fails_start_up_naming_key_and_value(string entry)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:Deny:0"] = "10.0.0.0/8";
        settings["NetStream:Hooks:Deny:1"] = entry;

        var error = await EchoHost.StartFailsAsync(settings);

        Assert.Contains($"NetStream:Hooks:Deny:1 = '{entry}'", error.Message);
        Assert.DoesNotContain("Deny:0", error.Message);
    }

    [Fact]
    public async Task Per_IP_limit_refuses_at_once_and_frees_when_a_connection_ends()
    {
        await using var host = await StartDualModeAsync(("MaxConnectionsPerIp", "2"));
        using var refusals = new RefusalRecorder(host.Host.Services);
        using var first = await ServedAsync(V4(host));
        using var second = await ServedAsync(V4(host));

        Assert.True(await EchoClient.IsTurnedAwayAsync(V4(host)));
        Assert.Equal("ip_limit", await refusals.NextAsync());

        // Another address has slots of its own.
        using (await ServedAsync(V6(host)))
        {
        }

        // The server's FIN comes after the slot is given back, so the next connect must be served.
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(first, Ping));
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(V4(host), Ping));
    }

    [Fact]
    public async Task Per_endpoint_limit_refuses_at_once_on_that_endpoint_only_and_frees_when_a_connection_ends()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
        settings["NetStream:Hooks:MaxConnectionsPerEndpoint"] = "1";
        await using var host = await EchoHost.StartAsync(settings);
        using var refusals = new RefusalRecorder(host.Host.Services);
        using var holder = await ServedAsync(host.EndPoints[0]);

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoints[0]));
        Assert.Equal("endpoint_limit", await refusals.NextAsync());
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoints[1], Ping));

        Assert.Equal(Ping, await EchoClient.RoundTripAsync(holder, Ping));
        Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoints[0], Ping));
    }

    [Theory]
    [InlineData("refuses")]
    [InlineData("throws")]
    [InlineData("times out")]
    [InlineData("handler throws")]
    [InlineData("close callback throws")]
    public async Task A_limit_slot_comes_back_whatever_happens_after_it_was_taken(string what)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:MaxConnectionsPerIp"] = "1";
        settings["NetStream:Hooks:Timeout"] = "00:00:00.300";
        var calls = 0;
        var never = new TaskCompletionSource<AcceptedResult>();
        await using var host = await EchoHost.StartAsync(
            settings,
            server => server.Run(connection => what == "handler throws" && Volatile.Read(ref calls) == 1
                ? throw new InvalidOperationException("handler bug")
                : TestEcho.EchoAsync(connection)),
            ns => ns.AddAcceptedHook(async context =>
            {
                if (Interlocked.Increment(ref calls) > 1)
                {
                    return AcceptedResult.Pass;
                }

                return what switch
                {
                    "refuses" => AcceptedResult.Refuse("first_refused"),
                    "throws" => throw new InvalidOperationException("hook bug"),
                    "times out" => await never.Task,
                    "close callback throws" => OnClosedThrows(context),
                    _ => AcceptedResult.Pass,
                };
            }));

        // The first connection took the address's only slot, then went wrong after it.
        if (what == "close callback throws")
        {
            Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoint, Ping));
        }
        else
        {
            Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        }

        Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoint, Ping));

        static AcceptedResult OnClosedThrows(AcceptedContext context)
        {
            context.OnClosed(_ => throw new InvalidOperationException("callback bug"), null);
            return AcceptedResult.Pass;
        }
    }

    [Fact]
    public async Task A_failed_handler_gives_its_limit_slot_back_before_its_peer_sees_the_reset()
    {
        // The server aborts a connection whose handler failed after the hooks ended: the slot must be free by the
        // time the peer sees the reset, every time, or its next connect is refused.
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:MaxConnectionsPerIp"] = "1";
        await using var host = await EchoHost.StartAsync(settings, server => server.Run(async connection =>
        {
            var read = await connection.Transport.Input.ReadAsync();
            if (read.Buffer.FirstSpan[0] == (byte)'!')
            {
                throw new InvalidOperationException("handler bug");
            }

            connection.Transport.Input.AdvanceTo(read.Buffer.Start);
            await TestEcho.EchoAsync(connection);
        }));

        for (var i = 0; i < 40; i++)
        {
            using (var failing = await Listeners.ConnectAsync(host.EndPoint))
            {
                await failing.SendAsync("!"u8.ToArray(), SocketFlags.None);
                Assert.True(await EchoClient.SeesCloseAsync(failing));
            }

            Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoint, Ping));
        }
    }

    [Fact]
    public async Task A_handler_that_aborts_its_connection_holds_the_slot_until_it_returns()
    {
        // The peer sees its reset at once, but the server is still busy with its connection: the limit counts it.
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:MaxConnectionsPerIp"] = "1";
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var returned = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(settings, server => server.Run(async connection =>
        {
            if (!aborted.Task.IsCompleted)
            {
                connection.Abort();
                aborted.TrySetResult();
                await release.Task;
                returned.TrySetResult();
                return;
            }

            await TestEcho.EchoAsync(connection);
        }));
        using var refusals = new RefusalRecorder(host.Host.Services);
        try
        {
            Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
            await aborted.Task.WaitAsync(Listeners.Timeout);

            Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
            Assert.Equal("ip_limit", await refusals.NextAsync());
        }
        finally
        {
            release.TrySetResult();
        }

        // Given back once the handler returned (just after, on the chain's way out: wait for it).
        await returned.Task.WaitAsync(Listeners.Timeout);
        await AssertServedSoonAsync(host.EndPoint);
    }

    [Theory]
    [InlineData(false, "ping")]
    [InlineData(true, null)]
    public async Task Built_in_hooks_placed_after_a_proxy_hook_see_the_address_it_gives(bool placeAfter, string? reply)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:Deny:0"] = "203.0.113.0/24";
        await using var host = await EchoHost.StartAsync(settings, netStream: ns =>
        {
            ns.AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(
                addressInfo: context.AddressInfo with { RemoteEndPoint = new IPEndPoint(IPAddress.Parse("203.0.113.9"), 1) })));
            if (placeAfter)
            {
                ns.AddBuiltInHooks();
            }
        });

        if (reply is null)
        {
            Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));
        }
        else
        {
            Assert.Equal(Ping, await EchoClient.RoundTripAsync(host.EndPoint, Ping));
        }
    }

    /// <summary>Served within a few tries: for a slot that comes back a moment after something the test can see.</summary>
    private static async Task AssertServedSoonAsync(EndPoint endPoint)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Assert.Equal(Ping, await EchoClient.RoundTripAsync(endPoint, Ping));
                return;
            }
            catch (SocketException) when (attempt < 100)
            {
                // Refused (reset): the slot was not back yet.
            }
        }
    }

    /// <summary>A connection that got through the hooks (it echoed once) and stays open.</summary>
    private static async Task<Socket> ServedAsync(EndPoint endPoint)
    {
        var client = await Listeners.ConnectAsync(endPoint);
        Assert.Equal(Ping, await EchoClient.EchoOnceAsync(client, Ping));
        return client;
    }
}
