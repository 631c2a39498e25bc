using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>
/// A peer that sends a request and never reads the answer: once the handler is done, the answer's last bytes wait in
/// NetStream for it. The connection holds its slots until it is over, and it is over at the close timeout at the latest.
/// </summary>
public sealed class SlowReaderTests
{
    /// <summary>Under MaxWriteBufferSize (64 KiB): the handler's flush returns, and most of it stays in the pipe.</summary>
    private const int Answer = 60 * 1024;

    [Fact]
    public async Task A_per_ip_slot_is_held_until_the_connection_is_over_not_only_until_its_handler_returns()
    {
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var settings = SlowPeerSettings(closeTimeout: "00:00:30");
        settings["NetStream:Hooks:MaxConnectionsPerIp"] = "1";
        await using var host = await EchoHost.StartAsync(settings, server => server.Run(async connection =>
        {
            await connection.Transport.Output.WriteAsync(new byte[Answer]);
            handled.TrySetResult();
        }));
        using var refusals = new RefusalRecorder(host.Host.Services);

        using (var slow = await ConnectSlowReaderAsync(host))
        {
            await handled.Task.WaitAsync(Listeners.Timeout);

            // Its handler is done, its answer not taken: the connection still counts.
            Assert.Equal("reset", await EchoClient.HowTurnedAwayAsync(host.EndPoint));
            Assert.Equal("ip_limit", await refusals.NextAsync());

            // It goes (reset: it has unread data), and with it its slot, a moment later.
            slow.LingerState = new LingerOption(true, 0);
        }

        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        while (await EchoClient.HowTurnedAwayAsync(host.EndPoint) is not null)
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    [Fact]
    public async Task Finished_connections_whose_peers_never_read_give_their_MaxConnections_slots_back_at_the_close_timeout()
    {
        var settings = SlowPeerSettings(closeTimeout: "00:00:01");
        settings["NetStream:MaxConnections"] = "2";
        await using var host = await EchoHost.StartAsync(settings);
        using var first = await ConnectSlowReaderAsync(host, request: Answer);
        using var second = await ConnectSlowReaderAsync(host, request: Answer);

        // Both echoes stall on their peers; a well-behaved client is served once the close timeout has reset them.
        Assert.Equal("hello"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "hello"u8.ToArray()).WaitAsync(Listeners.Timeout));
    }

    private static Dictionary<string, string?> SlowPeerSettings(string closeTimeout)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:SendBufferSize"] = "4096";
        settings["NetStream:CloseTimeout"] = closeTimeout;
        return settings;
    }

    /// <summary>A client with a small window that sends <paramref name="request"/> bytes and FIN, and never reads.</summary>
    private static async Task<Socket> ConnectSlowReaderAsync(EchoHost host, int request = 1)
    {
        var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(host.EndPoint);
        await client.SendAsync(new byte[request]);
        client.Shutdown(SocketShutdown.Send);
        return client;
    }
}
