using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// Whose headers are believed: the configuration that says it (checked at start-up, naming the key), and what a peer
/// outside the trusted list gets in each mode.
/// </summary>
public sealed class ProxyProtocolTrustTests
{
    [Theory]
    [InlineData("Require")]
    [InlineData("Optional")]
    public async Task A_mode_on_with_no_trusted_proxy_stops_start_up_naming_the_key_unless_any_peer_is_allowed_on_purpose(string mode)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = mode;

        var error = await EchoHost.StartFailsAsync(settings);
        Assert.Contains("NetStream:ProxyProtocol:TrustedProxies", Assert.IsType<OptionsValidationException>(error).Message);

        settings["NetStream:ProxyProtocol:AllowAnyPeer"] = "true";
        await using var host = await EchoHost.StartAsync(settings);
    }

    [Theory]
    [InlineData("NetStream:ProxyProtocol:TrustedProxies:0", "10.0.0.1/8")]
    [InlineData("NetStream:ProxyProtocol:TrustedProxies:0", "proxy.example")]
    [InlineData("NetStream:ProxyProtocol:HeaderTimeout", "00:00:00")]
    [InlineData("NetStream:ProxyProtocol:MaxHeaderBytes", "100")]
    [InlineData("NetStream:ProxyProtocol:MaxHeaderBytes", "70000")]
    [InlineData("NetStream:ProxyProtocol:Mode", "Sometimes")]
    [InlineData("NetStream:Endpoints:E0:ProxyProtocol:HeaderTimeout", "00:00:00")]
    public async Task A_bad_receiver_option_stops_start_up_naming_the_key_and_the_value(string key, string value)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:TrustedProxies:1"] = "127.0.0.1";
        settings[key] = value;

        var error = await EchoHost.StartFailsAsync(settings);

        Assert.Contains(key, error.Message);
        Assert.Contains($"'{value}'", error.Message);
    }

    [Fact]
    public async Task In_require_mode_a_peer_outside_the_trusted_proxies_is_refused_before_the_application_sees_it()
    {
        var handled = 0;
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "10.0.0.0/8";
        await using var host = await EchoHost.StartAsync(settings, server => server.Run(_ =>
        {
            Interlocked.Increment(ref handled);
            return Task.CompletedTask;
        }));
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.Equal("reset", await EchoClient.HowTurnedAwayAsync(host.EndPoint));
        Assert.Equal("proxy_untrusted", await refusals.NextAsync());
        Assert.Equal(0, Volatile.Read(ref handled));
    }

    [Fact]
    public async Task An_endpoint_s_own_trusted_proxies_replace_the_server_s_not_widen_them()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "127.0.0.0/8";
        settings["NetStream:Endpoints:E0:ProxyProtocol:TrustedProxies:0"] = "10.0.0.5";
        await using var host = await EchoHost.StartAsync(settings);
        using var refusals = new RefusalRecorder(host.Host.Services);

        Assert.Equal("reset", await EchoClient.HowTurnedAwayAsync(host.EndPoint));
        Assert.Equal("proxy_untrusted", await refusals.NextAsync());
    }

    [Fact]
    public async Task In_optional_mode_a_peer_outside_the_trusted_proxies_is_served_as_itself_even_if_it_sends_a_header()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = "Optional";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "10.0.0.0/8";
        await using var host = await EchoHost.StartAsync(settings, WhomEcho.Use);

        // A header from an untrusted peer is a claim nobody believes: it reaches the application as data.
        var header = "PROXY TCP4 192.0.2.7 192.0.2.8 1234 80\r\n"u8.ToArray();
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        var self = (IPEndPoint)client.LocalEndPoint!;
        await client.SendAsync(header);
        client.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        var received = await Listeners.ReceiveAsync(client, 4096);
        Assert.Equal([.. Encoding.ASCII.GetBytes($"{self}\n"), .. header], received);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001")]
    public async Task In_require_mode_a_trusted_peer_that_sends_no_header_is_refused_at_its_first_bytes(string start)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "127.0.0.1";
        await using var host = await EchoHost.StartAsync(settings);
        using var refusals = new RefusalRecorder(host.Host.Services);

        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await client.SendAsync(Encoding.Latin1.GetBytes(start));

        Assert.Equal("proxy_missing", await refusals.NextAsync());
        Assert.True(await EchoClient.SeesCloseAsync(client));
    }
}
