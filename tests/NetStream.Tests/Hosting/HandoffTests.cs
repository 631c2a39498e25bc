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
using NetStream.Transport.Internal.Handoff;

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
            var offer = Receive(successor, out var none);
            Assert.Empty(none);
            // The manifest: the endpoint (kind and address), family, type, and what the socket was bound with.
            Assert.Contains($$$"""{"kind":"tcp","address":"{{{old.EndPoint}}}","family":"inet","type":"stream","bound":{"backlog":{{{Somaxconn.Value}}},"reusePort":false,"deferAccept":0,"fastOpen":0}}""", offer);
            Receive(successor, out var descriptors);
            Assert.Single(descriptors);
            Descriptor.Close((ulong)descriptors[0]);
        }

        // Gone without "started": the old host does not stop, and serves.
        Assert.Equal("still"u8.ToArray(), await EchoClient.RoundTripAsync(old.EndPoint, "still"u8.ToArray()));
        Assert.False(old.Host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
    }

    [Fact]
    public async Task A_taken_socket_gets_the_new_backlog_and_defer_accept_and_a_warning_for_what_bind_fixed()
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        var first = WithHandoff(handoff, "tcp://127.0.0.1:0");
        first["NetStream:Backlog"] = "64";
        first["NetStream:DeferAccept"] = "00:00:03";
        first["NetStream:ReusePort"] = "true";
        await using var old = await EchoHost.StartAsync(first);

        var second = WithHandoff(handoff, $"tcp://{old.EndPoint}");
        second["NetStream:Backlog"] = "128";
        var log = new LogRecorder();
        using var successor = EchoHost.Build(second, netStream: b => b.Services.AddSingleton<ILoggerProvider>(log));
        await successor.StartAsync(Listeners.TimeoutToken());
        await old.StopAsync();

        var listener = Assert.Single(successor.Services.GetRequiredService<NetStreamServer>().BoundListeners);
        Assert.True(listener.IsInherited);
        Assert.Equal(128, listener.Backlog);
        Assert.Equal(128, KernelBacklog(listener.Socket));
        Assert.Equal(0, SocketConfigurator.GetRawInt(listener.Socket, SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpDeferAccept));
        Assert.Contains(log.Entries, e => e.EventId == 44 && e.Message.Contains("Backlog = 64", StringComparison.Ordinal) && e.Message.Contains("process's 128", StringComparison.Ordinal));
        Assert.Contains(log.Entries, e => e.EventId == 44 && e.Message.Contains("DeferAccept = 3 s", StringComparison.Ordinal));
        Assert.Contains(log.Entries, e => e.EventId == 45 && e.Message.Contains("ReusePort = True", StringComparison.Ordinal));
        Assert.Equal("new"u8.ToArray(), await EchoClient.RoundTripAsync(old.EndPoint, "new"u8.ToArray()));
        await successor.StopAsync(Listeners.TimeoutToken());
    }

    /// <summary>A listening socket's backlog as the kernel keeps it: <c>tcp_info.tcpi_sacked</c> of a listening socket.</summary>
    private static int KernelBacklog(Socket socket)
    {
        var info = new byte[232];
        var length = socket.GetRawSocketOption(6, 11, info); // IPPROTO_TCP, TCP_INFO
        Assert.True(length >= 32);
        return BitConverter.ToInt32(info, 28);
    }

    [Theory]
    [InlineData("garbage", "not a handoff message")]
    [InlineData("""{"error":"go away"}""", "refused: go away")]
    [InlineData("""{"offer":[{"kind":"tcp","address":"127.0.0.1:1"},{"kind":"tcp","address":"127.0.0.1:2"}]}""", "closed after 1 of the 2 sockets")]
    public async Task A_peer_that_is_no_handoff_is_refused_and_the_new_host_binds_as_usual(string answer, string reason)
    {
        using var offered = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        offered.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        offered.Listen(1);

        await using var host = await StartBesideFakeOldProcessAsync(answer, offered, reason);

        // The descriptor it received was closed: with this test's copy gone, nothing listens on that port any more.
        var port = ((IPEndPoint)offered.LocalEndPoint!).Port;
        offered.Dispose();
        var refused = await Assert.ThrowsAsync<SocketException>(() => Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Theory]
    [InlineData(SocketType.Dgram, "is not a stream socket (Dgram)")]
    [InlineData(SocketType.Stream, "is not listening")]
    public async Task A_descriptor_that_is_no_listening_stream_socket_is_refused_and_closed(SocketType type, string reason)
    {
        using var offered = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Dgram ? ProtocolType.Udp : ProtocolType.Tcp);
        offered.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var address = (IPEndPoint)offered.LocalEndPoint!;

        await using var host = await StartBesideFakeOldProcessAsync(
            $$"""{"offer":[{"kind":"tcp","address":"{{address}}"}]}""", offered, reason);

        // The descriptor it received was closed: with this test's copy gone, the address is free to bind again.
        offered.Dispose();
        using var again = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Dgram ? ProtocolType.Udp : ProtocolType.Tcp);
        again.Bind(address);
    }

    [Fact]
    public async Task A_process_of_another_user_is_not_given_the_sockets()
    {
        RequireRoot();
        var directory = Listeners.TempDirectory();
        var handoff = Path.Combine(directory, "handoff.sock");
        await using var old = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"));
        using var refusals = new InstrumentRecorder(old.Host.Services, "netstream.handoffs", "error.type");
        // Only the socket file's mode keeps other users out; opened up here, the peer's uid is what is left to check.
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(handoff, (UnixFileMode)0b110_110_110);

        using var stranger = Stranger.Start(StrangerSuccessor, handoff);

        Assert.Equal("hung up", await stranger.ReadLineAsync());
        await refusals.WaitForSumAsync("not_allowed", 1);
        Assert.False(old.Host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
        Assert.Equal("still"u8.ToArray(), await EchoClient.RoundTripAsync(old.EndPoint, "still"u8.ToArray()));
    }

    [Fact]
    public async Task A_handoff_socket_of_another_user_is_not_asked_and_the_new_host_binds_as_usual()
    {
        RequireRoot();
        var directory = Listeners.TempDirectory();
        File.SetUnixFileMode(directory, (UnixFileMode)0b111_111_111);
        var handoff = Path.Combine(directory, "handoff.sock");
        using var stranger = Stranger.Start(StrangerOldProcess, handoff);
        Assert.Equal("listening", await stranger.ReadLineAsync());
        var log = new LogRecorder();

        await using var host = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"), netStream: b => b.Services.AddSingleton<ILoggerProvider>(log));

        Assert.Contains(log.Entries, e => e.EventId == 35 && e.Message.Contains("runs as another user (65534)", StringComparison.Ordinal));
        Assert.Equal("accepted", await stranger.ReadLineAsync());
        Assert.False(host.Host.Services.GetRequiredService<NetStreamServer>().BoundListeners[0].IsInherited);
        Assert.Equal("own"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "own"u8.ToArray()));
    }

    /// <summary>
    /// Starts a host whose handoff path is served by this test posing as the old process: it reads the hello, sends
    /// <paramref name="answer"/> and, when that is an offer, <paramref name="offered"/>'s descriptor. The host must
    /// refuse for <paramref name="reason"/> and bind its own socket.
    /// </summary>
    private static async Task<EchoHost> StartBesideFakeOldProcessAsync(string answer, Socket offered, string reason)
    {
        var handoff = Path.Combine(Listeners.TempDirectory(), "handoff.sock");
        using var fake = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        fake.Bind(new UnixDomainSocketEndPoint(handoff));
        fake.Listen(1);
        var peer = Task.Run(async () =>
        {
            using var successor = await fake.AcceptAsync();
            Receive(successor, out _);
            Send(successor, answer);
            if (answer.Contains("\"offer\"", StringComparison.Ordinal))
            {
                // One socket, then gone.
                ScmRights.Send(successor, Encoding.UTF8.GetBytes("""{"fds":1}"""), [(int)offered.Handle]);
            }
        });
        var log = new LogRecorder();

        var host = await EchoHost.StartAsync(WithHandoff(handoff, "tcp://127.0.0.1:0"), netStream: b => b.Services.AddSingleton<ILoggerProvider>(log));

        await peer.WaitAsync(Listeners.Timeout);
        Assert.Contains(log.Entries, e => e.EventId == 35 && e.Message.Contains(reason, StringComparison.Ordinal));
        Assert.Equal("own"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "own"u8.ToArray()));
        Assert.False(host.Host.Services.GetRequiredService<NetStreamServer>().BoundListeners[0].IsInherited);
        return host;
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

    // A successor run as another user: says hello, prints "hung up" when the old process closes without a word (the
    // close may reach it as a reset: the hello was never read).
    private const string StrangerSuccessor = """
        use Socket; $SIG{PIPE} = "IGNORE"; $| = 1;
        socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!";
        connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!";
        send($s, qq({"hello":"netstream-handoff/1","pid":$$}), 0);
        my $n = sysread($s, my $answer, 65536);
        print $n ? "answer $answer\n" : $n == 0 || $!{ECONNRESET} ? "hung up\n" : "error $!\n";
        """;

    // An "old process" run as another user: listens at the handoff path, accepts one peer, says nothing.
    private const string StrangerOldProcess = """
        use Socket; $| = 1;
        socket(my $l, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!";
        bind($l, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
        listen($l, 4) or die "listen: $!";
        print "listening\n";
        accept(my $c, $l) or die "accept: $!";
        print "accepted\n";
        my $wait = <STDIN>;
        """;

    private static void RequireRoot() =>
        Assert.True(ProcessUser.Id == 0, "this test runs a process as another user (uid 65534, with setpriv): it needs root, as CI has");

    /// <summary>A Perl script run as uid and gid 65534 (nobody) with setpriv; reads its output line by line.</summary>
    private sealed class Stranger : IDisposable
    {
        private readonly System.Diagnostics.Process _process;

        private Stranger(System.Diagnostics.Process process) => _process = process;

        public static Stranger Start(string script, string argument)
        {
            var start = new System.Diagnostics.ProcessStartInfo("setpriv")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var word in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "perl", "-e", script, argument })
            {
                start.ArgumentList.Add(word);
            }

            return new Stranger(System.Diagnostics.Process.Start(start)!);
        }

        public async Task<string?> ReadLineAsync()
        {
            var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(Listeners.Timeout);
            return line ?? $"(exited: {await _process.StandardError.ReadToEndAsync()})";
        }

        public void Dispose()
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(Listeners.Timeout))
            {
                _process.Kill();
            }

            _process.Dispose();
        }
    }

    private static async Task WhenCancelled(CancellationToken token)
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = token.Register(cancelled.SetResult);
        await cancelled.Task.WaitAsync(Listeners.Timeout);
    }
}
