using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// The receiver under hostile load: peers that stall mid-header are closed at the header timeout without holding up
/// anyone else, a flood of untrusted peers leaves the trusted one served, and the timeout is gone after the header.
/// </summary>
public sealed class ProxyProtocolHostileTests
{
    /// <summary>
    /// Long enough that a good peer's header, read the moment it arrives, is served well within it on two busy cores (the
    /// suite runs on both engines at once), where 2,000 stalled peers wait for it.
    /// </summary>
    private static readonly TimeSpan HeaderTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Peers_that_stall_mid_header_are_all_closed_at_the_header_timeout_while_a_good_one_is_served()
    {
        const int Stalled = 2000;
        await using var host = await StartAsync(trusted: "127.0.0.1");
        using var refusals = new InstrumentRecorder(host.Host.Services, "netstream.connections.refused", "error.type");
        var stalled = new List<Socket>();
        try
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < Stalled; i++)
            {
                var client = await Listeners.ConnectAsync(host.EndPoint);
                stalled.Add(client);
                await client.SendAsync("PROXY TCP4 192.0.2."u8.ToArray());
            }

            var opened = clock.Elapsed;

            // Served while the stalled peers wait: its header is read the moment it arrives, not behind theirs.
            var served = Stopwatch.StartNew();
            Assert.Equal("192.0.2.1:4000\nok", await RoundTripAsync(host.EndPoint, "PROXY TCP4 192.0.2.1 192.0.2.2 4000 80\r\n", "ok"));
            Assert.True(served.Elapsed < HeaderTimeout, $"The good connection took {served.ElapsedMilliseconds} ms.");

            await Task.WhenAll(stalled.Select(EchoClient.SeesCloseAsync));
            Assert.InRange(clock.Elapsed, HeaderTimeout, opened + HeaderTimeout + TimeSpan.FromSeconds(2));
            await refusals.WaitForSumAsync("proxy_timeout", Stalled);
        }
        finally
        {
            foreach (var client in stalled)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task Ten_thousand_untrusted_peers_in_a_row_are_refused_and_then_a_trusted_one_is_served()
    {
        const int Untrusted = 10_000;

        // Dual mode: IPv4 loopback clients are not trusted, ::1 is.
        await using var host = await StartAsync(trusted: "::1", url: "tcp://[::]:0");
        using var refusals = new InstrumentRecorder(host.Host.Services, "netstream.connections.refused", "error.type");
        var port = ((IPEndPoint)host.EndPoint).Port;
        var v4 = new IPEndPoint(IPAddress.Loopback, port);

        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        await Parallel.ForEachAsync(Enumerable.Range(0, Untrusted), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = timeout.Token }, async (_, _) =>
            Assert.True(await EchoClient.IsTurnedAwayAsync(v4)));
        await refusals.WaitForSumAsync("proxy_untrusted", Untrusted);

        var v6 = new IPEndPoint(IPAddress.IPv6Loopback, port);
        Assert.Equal("[2001:db8::1]:5000\nstill served", await RoundTripAsync(v6, "PROXY TCP6 2001:db8::1 2001:db8::2 5000 443\r\n", "still served"));
    }

    [Fact]
    public async Task After_a_good_header_the_header_timeout_is_gone()
    {
        await using var host = await StartAsync(trusted: "127.0.0.1");
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        await client.SendAsync("PROXY TCP4 192.0.2.9 192.0.2.2 4009 80\r\n"u8.ToArray());
        Assert.Equal("192.0.2.9:4009\n", Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 15)));

        // Quiet for twice the header timeout: a measuring window, no event marks a timeout that does not happen.
        await Task.Delay(HeaderTimeout * 2);

        Assert.Equal("late"u8.ToArray(), await EchoClient.EchoOnceAsync(client, "late"u8.ToArray()));
    }

    /// <summary>An echo server that first says whom it serves, behind a receiver that requires a header within <see cref="HeaderTimeout"/>.</summary>
    private static Task<EchoHost> StartAsync(string trusted, string url = "tcp://127.0.0.1:0")
    {
        var settings = EchoHost.Endpoints(url);
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = trusted;
        settings["NetStream:ProxyProtocol:HeaderTimeout"] = HeaderTimeout.ToString();
        return EchoHost.StartAsync(settings, WhomEcho.Use);
    }

    private static async Task<string> RoundTripAsync(EndPoint endPoint, string header, string data)
    {
        using var client = await Listeners.ConnectAsync(endPoint);
        await client.SendAsync(Encoding.ASCII.GetBytes(header + data));
        client.Shutdown(SocketShutdown.Send);
        return Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 4096));
    }
}
