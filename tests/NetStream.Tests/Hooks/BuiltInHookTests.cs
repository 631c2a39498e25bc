using System.Net;
using System.Net.Sockets;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;

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

    /// <summary>A connection that got through the hooks (it echoed once) and stays open.</summary>
    private static async Task<Socket> ServedAsync(EndPoint endPoint)
    {
        var client = await Listeners.ConnectAsync(endPoint);
        Assert.Equal(Ping, await EchoClient.EchoOnceAsync(client, Ping));
        return client;
    }
}
