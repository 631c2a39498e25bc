using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>
/// <c>FirstByteTimeout</c> and <c>IdleTimeout</c> of the hosted server: a peer that says nothing, or goes quiet, is
/// closed on time and counted; one that talks is left alone; each endpoint may set its own.
/// </summary>
public sealed class HostedTimeoutTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_peer_that_never_sends_is_closed_at_the_first_byte_timeout_and_one_that_talks_is_not()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:FirstByteTimeout"] = "00:00:01";
        await using var host = await EchoHost.StartAsync(settings);
        using var timedOut = new InstrumentRecorder(host.Host.Services, "netstream.connections.timed_out", "error.type");

        using var talker = await Listeners.ConnectAsync(host.EndPoint);
        Assert.Equal([1], await EchoClient.EchoOnceAsync(talker, [1]));
        var clock = Stopwatch.StartNew();
        using var silent = await Listeners.ConnectAsync(host.EndPoint);

        Assert.True(await EchoClient.SeesCloseAsync(silent));
        Assert.InRange(clock.Elapsed, Short * 0.9, Short * 10);
        Assert.Equal(1, timedOut.Sum("first_byte"));

        // Connected before the silent one: past its first-byte deadline too, and still served.
        Assert.Equal([2], await EchoClient.EchoOnceAsync(talker, [2]));
    }

    [Fact]
    public async Task A_client_behind_a_proxy_that_sends_only_the_proxy_header_meets_the_first_byte_timeout()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:FirstByteTimeout"] = "00:00:01";
        settings["NetStream:Endpoints:E0:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:Endpoints:E0:ProxyProtocol:TrustedProxies:0"] = "127.0.0.1";
        await using var host = await EchoHost.StartAsync(settings);
        using var timedOut = new InstrumentRecorder(host.Host.Services, "netstream.connections.timed_out", "error.type");
        var header = "PROXY TCP4 192.0.2.1 192.0.2.2 40000 7007\r\n"u8.ToArray();

        // The header and the client's first byte in one segment: the client spoke, and is served.
        using var talker = await Listeners.ConnectAsync(host.EndPoint);
        await talker.SendAsync((byte[])[.. header, 1]);
        Assert.Equal([1], await Listeners.ReceiveAsync(talker, 1));

        // The load balancer's header, then nothing from its client: the header is not the client's first byte.
        var clock = Stopwatch.StartNew();
        using var silent = await Listeners.ConnectAsync(host.EndPoint);
        await silent.SendAsync(header);
        Assert.True(await EchoClient.SeesCloseAsync(silent));
        Assert.InRange(clock.Elapsed, Short * 0.9, Short * 10);
        Assert.Equal(1, timedOut.Sum("first_byte"));
        Assert.Equal([2], await EchoClient.EchoOnceAsync(talker, [2]));
    }

    [Fact]
    public async Task A_peer_that_goes_quiet_is_closed_at_its_endpoint_s_idle_timeout_and_a_busy_one_or_another_endpoint_s_is_not()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:IdleTimeout"] = "00:00:01";
        await using var host = await EchoHost.StartAsync(settings);
        using var timedOut = new InstrumentRecorder(host.Host.Services, "netstream.connections.timed_out", "error.type");

        using var busy = await Listeners.ConnectAsync(host.EndPoints[0]);
        using var quiet = await Listeners.ConnectAsync(host.EndPoints[0]);
        using var elsewhere = await Listeners.ConnectAsync(host.EndPoints[1]);
        Assert.Equal([1], await EchoClient.EchoOnceAsync(elsewhere, [1]));
        Assert.Equal([1], await EchoClient.EchoOnceAsync(quiet, [1]));
        var clock = Stopwatch.StartNew();

        // The busy peer echoes every 200 ms until the quiet one is closed: always well inside its idle time.
        var closed = EchoClient.SeesCloseAsync(quiet);
        while (!closed.IsCompleted)
        {
            Assert.Equal([3], await EchoClient.EchoOnceAsync(busy, [3]));
            await Task.WhenAny(closed, Task.Delay(200));
        }

        Assert.True(await closed);
        Assert.InRange(clock.Elapsed, Short * 0.9, Short * 10);
        Assert.Equal(1, timedOut.Sum("idle"));
        Assert.Equal([4], await EchoClient.EchoOnceAsync(busy, [4]));

        // The other endpoint has no idle timeout: its peer, quiet as long, is still served.
        Assert.Equal([5], await EchoClient.EchoOnceAsync(elsewhere, [5]));
    }

    [Fact]
    public async Task The_handler_s_read_fails_with_the_timeout_that_closed_its_connection()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:IdleTimeout"] = "00:00:00.5";
        var ended = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await EchoHost.StartAsync(settings, server => server.Run(async connection =>
        {
            try
            {
                await connection.Transport.Input.ReadAsync();
                ended.TrySetResult(null);
            }
            catch (Exception e)
            {
                ended.TrySetResult(e);
            }
        }));

        using var client = await Listeners.ConnectAsync(host.EndPoint);

        var error = await ended.Task.WaitAsync(Listeners.Timeout);
        Assert.IsType<ConnectionAbortedException>(error);
        Assert.Contains("IdleTimeout = 00:00:00.5", error.Message);
        Assert.Equal("fin", await ReadEndAsync(client));
    }

    [Theory]
    [InlineData("NetStream:FirstByteTimeout", "00:00:00")]
    [InlineData("NetStream:IdleTimeout", "-00:00:02")]
    [InlineData("NetStream:Endpoints:E0:IdleTimeout", "00:00:00")]
    [InlineData("NetStream:Endpoints:E0:FirstByteTimeout", "-00:00:01")]
    public async Task A_timeout_that_is_not_positive_stops_start_up_naming_the_key_and_the_value(string key, string value)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings[key] = value;

        var error = await EchoHost.StartFailsAsync(settings);

        var validation = Assert.IsType<OptionsValidationException>(error);
        Assert.Contains($"{key} = '{value}'", validation.Message);
    }

    private static async Task<string> ReadEndAsync(Socket client)
    {
        try
        {
            return await client.ReceiveAsync(new byte[16], SocketFlags.None, Listeners.TimeoutToken()) == 0 ? "fin" : "data";
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return "reset";
        }
    }
}
