using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NetStream.Hosting.Internal;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Hosting;

/// <summary>
/// Listener handoff between two hosts of one test process (the two processes of a restart): the new one takes the old
/// one's listening sockets over the handoff path, the old one is told to stop once the new one has started.
/// </summary>
public sealed class HandoffTests
{
    [Fact]
    public async Task A_new_host_takes_the_sockets_and_the_old_one_stops_while_its_connections_finish()
    {
        var directory = Listeners.TempDirectory();
        var handoff = Path.Combine(directory, "handoff.sock");
        var unix = Path.Combine(directory, "echo.sock");
        await using var old = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0", $"unix:{unix}"));
        var tcp = (IPEndPoint)old.EndPoint;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(handoff));
        using var during = await Listeners.ConnectAsync(tcp);
        Assert.Equal("before"u8.ToArray(), await EchoClient.EchoOnceAsync(during, "before"u8.ToArray()));

        using var sent = new InstrumentRecorder(old.Host.Services, "netstream.handoffs", "netstream.handoff.direction");
        using var successor = EchoHost.Build(WithHandoff(handoff, $"tcp://{tcp}", $"unix:{unix}"));
        using var taken = new InstrumentRecorder(successor.Services, "netstream.handoff.sockets", "network.transport");
        using var received = new InstrumentRecorder(successor.Services, "netstream.handoffs", "netstream.handoff.direction");
        await successor.StartAsync(Listeners.TimeoutToken());

        // The old host is told to stop (what its Run would act on) only after the new one started.
        await WhenCancelled(old.Host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        await sent.WaitForSumAsync("sent", 1);
        Assert.Equal(1, received.Sum("received"));
        Assert.Equal((1L, 1L), (taken.Sum("tcp"), taken.Sum("unix")));
        var server = successor.Services.GetRequiredService<NetStreamServer>();
        Assert.All(server.BoundListeners, listener => Assert.True(listener.IsInherited));
        Assert.Equal(tcp, server.BoundEndPoints[0]);

        // The old host drains: its connection is served to its end.
        var stopping = old.StopAsync();
        Assert.Equal("after"u8.ToArray(), await EchoClient.RoundTripAsync(during, "after"u8.ToArray()));
        await stopping.WaitAsync(Listeners.Timeout);

        // The sockets go on serving in the new host, the Unix socket's file included.
        Assert.True(File.Exists(unix));
        Assert.Equal("tcp"u8.ToArray(), await EchoClient.RoundTripAsync(tcp, "tcp"u8.ToArray()));
        Assert.Equal("unix"u8.ToArray(), await EchoClient.RoundTripAsync(new UnixDomainSocketEndPoint(unix), "unix"u8.ToArray()));
        // And the successor offers them in turn; stopping without a successor of its own, it removes the socket's file.
        Assert.True(File.Exists(handoff));
        await successor.StopAsync(Listeners.TimeoutToken());
        Assert.False(File.Exists(unix));
    }

    [Fact]
    public async Task A_second_successor_while_one_is_served_is_told_the_old_host_is_busy_and_binds_its_own()
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        await using var old = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"));
        using var oldHandoffs = new InstrumentRecorder(old.Host.Services, "netstream.handoffs", "error.type");
        using var first = Connect(handoff);
        Send(first, $$"""{"hello":"netstream-handoff/1","pid":{{Environment.ProcessId}}}""");
        Receive(first, out _);
        Receive(first, out var descriptors);
        Descriptor.Close((ulong)Assert.Single(descriptors));

        // The first successor has the sockets and has not started: a second one asks meanwhile.
        var log = new LogRecorder();
        using var second = EchoHost.Build(WithHandoff(handoff, "tcp://127.0.0.1:0"), netStream: b => b.Services.AddSingleton<ILoggerProvider>(log));
        using var refused = new InstrumentRecorder(second.Services, "netstream.handoffs", "error.type");
        await second.StartAsync(Listeners.TimeoutToken());

        Assert.Contains(log.Entries, e => e.EventId == 35 && e.Message.Contains("busy", StringComparison.Ordinal));
        Assert.Equal(1, refused.Sum("refused"));
        await oldHandoffs.WaitForSumAsync("busy", 1);
        var own = second.Services.GetRequiredService<NetStreamServer>().BoundEndPoints[0];
        Assert.Equal("second"u8.ToArray(), await EchoClient.RoundTripAsync(own, "second"u8.ToArray()));
        Assert.Equal("old"u8.ToArray(), await EchoClient.RoundTripAsync(old.EndPoint, "old"u8.ToArray()));
        await second.StopAsync(Listeners.TimeoutToken());
    }


    [Fact]
    public async Task Kestrel_hands_its_endpoint_an_AcceptShards_group_to_the_next_app()
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        using var timeout = KestrelApp.Timeout();
        await using var old = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0),
            web => web.MapGet("/", () => "old"),
            timeout.Token,
            options => (options.Handoff.Path, options.AcceptShards) = (handoff, 2));

        using var keptAlive = await Listeners.ConnectAsync(old.EndPoint);
        Assert.DoesNotContain("Connection: close", await GetAsync(keptAlive), StringComparison.OrdinalIgnoreCase);

        await using var successor = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(old.EndPoint),
            web => web.MapGet("/", () => "new"),
            timeout.Token,
            options => (options.Handoff.Path, options.AcceptShards) = (handoff, 2));

        await WhenCancelled(old.App.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        // Before its stop the old app answered its keep-alive connections' next request with Connection: close, so
        // that their clients reconnect (to the successor) instead of racing the stop's close of idle connections.
        Assert.Contains("Connection: close", await GetAsync(keptAlive), StringComparison.OrdinalIgnoreCase);
        await old.StopAsync();
        using var http = new System.Net.Http.HttpClient { BaseAddress = old.BaseAddress };
        Assert.Equal("new", await http.GetStringAsync("/", timeout.Token));
        Assert.Equal(old.EndPoint.Port, successor.EndPoint.Port);
        // Both sockets of the group were taken (none bound anew beside them, none left open unused).
        Assert.Equal(2, NetStream.Tests.Transport.AcceptShardsTests.ListeningSocketsOn(old.EndPoint.Port));
    }

    [Fact]
    public async Task A_successor_that_goes_away_before_it_started_leaves_the_old_host_serving()
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        await using var old = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"));

        using (var successor = Connect(handoff))
        {
            Send(successor, $$"""{"hello":"netstream-handoff/1","pid":{{Environment.ProcessId}}}""");
            Assert.Contains("\"offer\"", Receive(successor, out var none));
            Assert.Empty(none);
            Receive(successor, out var descriptors);
            Assert.Single(descriptors);
            Descriptor.Close((ulong)descriptors[0]);
        }

        // Gone without "started": the old host does not stop, and serves.
        Assert.Equal("still"u8.ToArray(), await EchoClient.RoundTripAsync(old.EndPoint, "still"u8.ToArray()));
        Assert.False(old.Host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
    }

    [Theory]
    [InlineData("garbage", "not a handoff message")]
    [InlineData("""{"error":"go away"}""", "refused: go away")]
    [InlineData("""{"offer":[{"kind":"tcp","address":"127.0.0.1:1"},{"kind":"tcp","address":"127.0.0.1:2"}]}""", "closed after 1 of the 2 sockets")]
    public async Task A_peer_that_is_no_handoff_is_refused_and_the_new_host_binds_as_usual(string answer, string reason)
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        using var fake = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        fake.Bind(new UnixDomainSocketEndPoint(handoff));
        fake.Listen(1);
        using var offered = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        offered.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        offered.Listen(1);
        var peer = Task.Run(async () =>
        {
            using var successor = await fake.AcceptAsync();
            Receive(successor, out _);
            Send(successor, answer);
            if (answer.Contains("\"offer\"", StringComparison.Ordinal))
            {
                // One socket of the two offered, then gone.
                ScmRights.Send(successor, Encoding.UTF8.GetBytes("""{"fds":1}"""), [(int)offered.Handle]);
            }
        });
        var log = new LogRecorder();

        await using var host = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"), netStream: b => b.Services.AddSingleton<ILoggerProvider>(log));

        await peer.WaitAsync(Listeners.Timeout);
        Assert.Contains(log.Entries, e => e.EventId == 35 && e.Message.Contains(reason, StringComparison.Ordinal));
        Assert.Equal("own"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "own"u8.ToArray()));
        Assert.False(host.Host.Services.GetRequiredService<NetStreamServer>().BoundListeners[0].IsInherited);
        // The descriptor it received was closed: with this test's copy gone, nothing listens on that port any more.
        var port = ((IPEndPoint)offered.LocalEndPoint!).Port;
        offered.Dispose();
        var refused = await Assert.ThrowsAsync<SocketException>(() => Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    /// <summary>One HTTP/1.1 request on a kept-alive connection; the response's head and body as text.</summary>
    private static async Task<string> GetAsync(Socket connection)
    {
        await connection.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        var response = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        // The body, "old", sent with a length or in chunks.
        while (response.ToString() is var text && !text.EndsWith("\r\n\r\nold", StringComparison.Ordinal) && !text.EndsWith("old\r\n0\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await connection.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.True(read > 0, $"the connection closed after: {response}");
            response.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return response.ToString();
    }

    private static Dictionary<string, string?> WithHandoff(string path, params string[] urls)
    {
        var settings = EchoHost.Endpoints(urls);
        settings["NetStream:Handoff:Path"] = path;
        return settings;
    }

    private static Socket Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified) { ReceiveTimeout = 20_000 };
        socket.Connect(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    private static void Send(Socket socket, string json) => socket.Send(Encoding.UTF8.GetBytes(json));

    private static string Receive(Socket socket, out int[] descriptors)
    {
        var buffer = new byte[65536];
        (var length, descriptors) = ScmRights.Receive(socket, buffer);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    private static async Task WhenCancelled(CancellationToken token)
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = token.Register(cancelled.SetResult);
        await cancelled.Task.WaitAsync(Listeners.Timeout);
    }
}
