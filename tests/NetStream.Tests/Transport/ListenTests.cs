using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;

namespace NetStream.Tests.Transport;

public sealed class ListenTests
{
    // Linux option numbers, read back with getsockopt(2) so nothing goes through the runtime's own mapping.
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;
    private const int SoSndBuf = 7;
    private const int SoRcvBuf = 8;
    private const int SoKeepAlive = 9;
    private const int SoOobInline = 10;
    private const int SoLinger = 13;
    private const int SoReusePort = 15;
    private const int IpProtoTcp = 6;
    private const int TcpNoDelay = 1;
    private const int TcpCork = 3;
    private const int TcpKeepIdle = 4;
    private const int TcpKeepIntvl = 5;
    private const int TcpKeepCnt = 6;
    private const int TcpInfo = 11;

    // struct tcp_info: eight u8 fields, then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked.
    // For a LISTEN socket the kernel reports sk_max_ack_backlog in tcpi_sacked.
    private const int TcpInfoSackedOffset = 28;

    [Fact]
    public void Tcp_info_reports_the_listen_backlog_at_offset_28()
    {
        // Checks the offset itself with a raw socket, independently of NetStream.
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        raw.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        raw.Listen(37);

        Assert.Equal(37, KernelBacklog(raw));
    }

    [Fact]
    public async Task Default_backlog_is_somaxconn_as_the_kernel_reports_it()
    {
        var somaxconn = int.Parse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());

        await using var listener = await Listeners.BindLoopbackAsync();

        Assert.Equal(somaxconn, listener.Backlog);
        Assert.Equal(somaxconn, KernelBacklog(listener.Socket));
    }

    [Fact]
    public async Task Configured_backlog_is_the_one_the_kernel_reports()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => o.Backlog = 100);

        Assert.Equal(100, listener.Backlog);
        Assert.Equal(100, KernelBacklog(listener.Socket));
    }

    [Fact]
    public async Task Configured_backlog_applies_to_a_unix_socket_too()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "b.sock");
        await using var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path), o => o.Backlog = 100);

        Assert.Equal(100, listener.Backlog);
    }

    [Fact]
    public async Task Default_options_set_nodelay_and_leave_keepalive_cork_oobinline_and_linger_off()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        var socket = AcceptedSocket(connection);

        Assert.Equal(1, GetInt(socket, IpProtoTcp, TcpNoDelay));
        Assert.Equal(0, GetInt(socket, SolSocket, SoKeepAlive));
        Assert.Equal(0, GetInt(socket, IpProtoTcp, TcpCork));
        Assert.Equal(0, GetInt(socket, SolSocket, SoOobInline));
        Assert.Equal((0, 0), GetLinger(socket));
        Assert.Equal(1, GetInt(listener.Socket, SolSocket, SoReuseAddr));
        Assert.Equal(0, GetInt(listener.Socket, SolSocket, SoReusePort));
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task With_cork_each_flush_is_sent_at_once_not_after_the_kernels_200_ms()
    {
        const int Rounds = 10;
        await using var host = await EchoHost.StartAsync(new Dictionary<string, string?>(EchoHost.Endpoints("tcp://127.0.0.1:0")) { ["NetStream:Cork"] = "true" });
        using var client = await Listeners.ConnectAsync(host.EndPoint);

        // Corked and never pushed, each 1-byte reply would wait for the kernel's cork timer: at least 200 ms a round.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < Rounds; i++)
        {
            Assert.Equal(new[] { (byte)i }, await EchoClient.EchoOnceAsync(client, [(byte)i]));
        }

        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(200 * Rounds), $"{Rounds} corked round trips took {clock.ElapsedMilliseconds} ms.");
    }

    [Fact]
    public async Task Every_configured_option_is_read_back_from_the_accepted_socket()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.NoDelay = true;
            o.KeepAlive.Enabled = true;
            o.KeepAlive.Idle = TimeSpan.FromSeconds(77);
            o.KeepAlive.Interval = TimeSpan.FromSeconds(13);
            o.KeepAlive.Count = 4;
            o.Cork = true;
            o.OobInline = true;
            o.Linger = TimeSpan.FromSeconds(5);
            o.ReceiveBufferSize = 65536;
            o.SendBufferSize = 32768;
            o.ReuseAddress = true;
            o.ReusePort = true;
        });
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var accepted = (await listener.AcceptAsync(withAddressInfo: true, Listeners.TimeoutToken()))!;
        var socket = AcceptedSocket(accepted.Connection);

        Assert.Equal(1, GetInt(socket, IpProtoTcp, TcpNoDelay));
        Assert.Equal(1, GetInt(socket, SolSocket, SoKeepAlive));
        Assert.Equal(77, GetInt(socket, IpProtoTcp, TcpKeepIdle));
        Assert.Equal(13, GetInt(socket, IpProtoTcp, TcpKeepIntvl));
        Assert.Equal(4, GetInt(socket, IpProtoTcp, TcpKeepCnt));
        Assert.Equal(1, GetInt(socket, IpProtoTcp, TcpCork));
        Assert.Equal(1, GetInt(socket, SolSocket, SoOobInline));
        Assert.Equal((1, 5), GetLinger(socket));

        // The kernel doubles SO_RCVBUF/SO_SNDBUF for its bookkeeping; accepted sockets inherit the listener's.
        Assert.True(GetInt(socket, SolSocket, SoRcvBuf) >= 65536, $"SO_RCVBUF {GetInt(socket, SolSocket, SoRcvBuf)}");
        Assert.True(GetInt(socket, SolSocket, SoSndBuf) >= 32768, $"SO_SNDBUF {GetInt(socket, SolSocket, SoSndBuf)}");
        Assert.True(GetInt(listener.Socket, SolSocket, SoRcvBuf) >= 65536);
        Assert.True(GetInt(listener.Socket, SolSocket, SoSndBuf) >= 32768);

        Assert.Equal(1, GetInt(listener.Socket, SolSocket, SoReuseAddr));
        Assert.Equal(1, GetInt(listener.Socket, SolSocket, SoReusePort));
        await accepted.Connection.DisposeAsync();
    }

    [Fact]
    public async Task Nodelay_false_leaves_nagle_on()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => o.NoDelay = false);
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        Assert.Equal(0, GetInt(AcceptedSocket(connection), IpProtoTcp, TcpNoDelay));
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task Reuse_address_false_is_a_clear_error_because_the_runtime_always_sets_it()
    {
        var error = await Assert.ThrowsAsync<NotSupportedException>(() => Listeners.BindLoopbackAsync(o => o.ReuseAddress = false));

        Assert.Contains("ReuseAddress", error.Message);
    }

    [Fact]
    public async Task Linger_zero_is_applied_as_on_with_zero_seconds()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => o.Linger = TimeSpan.Zero);
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        Assert.Equal((1, 0), GetLinger(AcceptedSocket(connection)));
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task A_lingering_close_does_not_hold_up_the_disposing_caller()
    {
        // The peer reads nothing, so the kernel cannot send what it holds: close(2) with SO_LINGER waits 10 s for it.
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.Linger = TimeSpan.FromSeconds(10);
            o.SendBufferSize = 1024 * 1024;
        });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        await connection.Transport.Output.WriteAsync(new byte[256 * 1024]);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await connection.DisposeAsync();

        // It waits on a pool thread, not on the caller's (nor on an I/O thread other connections share).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"DisposeAsync took {clock.Elapsed}.");
    }

    [Fact]
    public async Task Two_listeners_with_reuse_port_share_one_port()
    {
        await using var first = await Listeners.BindLoopbackAsync(o => o.ReusePort = true);
        var port = ((IPEndPoint)first.EndPoint).Port;

        await using var second = await Listeners.BindAsync(new IPEndPoint(IPAddress.Loopback, port), o => o.ReusePort = true);

        Assert.Equal(first.EndPoint, second.EndPoint);
        Assert.True(first.IsListening);
        Assert.True(second.IsListening);
    }

    [Fact]
    public async Task Without_reuse_port_a_second_listener_on_the_port_throws_address_in_use()
    {
        await using var first = await Listeners.BindLoopbackAsync();
        var port = ((IPEndPoint)first.EndPoint).Port;

        await Assert.ThrowsAsync<AddressInUseException>(async () =>
            await Listeners.BindAsync(new IPEndPoint(IPAddress.Loopback, port)));
    }

    [Fact]
    public async Task Reuse_port_on_only_one_of_two_listeners_throws_address_in_use()
    {
        await using var first = await Listeners.BindLoopbackAsync(o => o.ReusePort = true);
        var port = ((IPEndPoint)first.EndPoint).Port;

        await Assert.ThrowsAsync<AddressInUseException>(async () =>
            await Listeners.BindAsync(new IPEndPoint(IPAddress.Loopback, port)));
    }

    [Fact]
    public async Task Binding_a_port_bound_by_another_socket_throws_address_in_use()
    {
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        squatter.Listen();

        var error = await Assert.ThrowsAsync<AddressInUseException>(async () =>
            await Listeners.BindAsync(squatter.LocalEndPoint!));

        Assert.Contains(((IPEndPoint)squatter.LocalEndPoint!).Port.ToString(), error.Message);
    }

    [Fact]
    public async Task Tcp_only_options_set_for_a_unix_socket_endpoint_are_named_in_a_log_line()
    {
        var logs = new LogRecorder();
        using var loggers = new Microsoft.Extensions.Logging.LoggerFactory([logs]);
        var options = new NetStreamTransportOptions { Cork = true, KeepAlive = { Enabled = true }, ReusePort = true };
        var factory = new NetStreamTransportFactory(Microsoft.Extensions.Options.Options.Create(options), loggers);
        var path = Path.Combine(Listeners.TempDirectory(), "t.sock");

        await using var listener = await factory.BindAsync(new UnixDomainSocketEndPoint(path), options);

        var line = Assert.Single(logs.Entries, e => e.EventId == 19);
        Assert.Equal($"TCP-only options not set on the Unix socket endpoint {path}: Cork, KeepAlive, ReusePort.", line.Message);
        Assert.Equal(0, GetInt(listener.Socket, SolSocket, SoReusePort));
    }

    [Fact]
    public async Task A_bind_whose_memory_pool_cannot_be_made_fails_and_leaves_no_socket_file()
    {
        var services = BareServices.With()
            .AddSingleton<IMemoryPoolFactory<byte>, FailingPoolFactory>();
        services.AddNetStream();
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<NetStreamTransportFactory>();
        var path = Path.Combine(Listeners.TempDirectory(), "p.sock");

        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await factory.BindAsync(new UnixDomainSocketEndPoint(path), factory.Options));

        Assert.Equal(FailingPoolFactory.Message, error.Message);
        Assert.False(File.Exists(path));
    }

    private sealed class FailingPoolFactory : IMemoryPoolFactory<byte>
    {
        public const string Message = "No memory pool today.";

        public System.Buffers.MemoryPool<byte> Create(MemoryPoolOptions? options = null) => throw new InvalidOperationException(Message);
    }

    [Fact]
    public async Task A_stale_unix_socket_file_is_replaced()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "s.sock");
        MakeStaleSocketFile(path);

        await using var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path));
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = await listener.AcceptAsync(Listeners.TimeoutToken());

        Assert.NotNull(connection);
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task A_live_unix_socket_throws_address_in_use_and_keeps_serving()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "l.sock");
        await using var live = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path));
        var accepting = live.AcceptAsync(Listeners.TimeoutToken()).AsTask();

        await Assert.ThrowsAsync<AddressInUseException>(async () =>
            await Listeners.BindAsync(new UnixDomainSocketEndPoint(path)));

        // The live listener's file survived the attempt: it still accepts.
        using var client = await Listeners.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var connection = await accepting.WaitAsync(Listeners.Timeout);
        Assert.NotNull(connection);
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task A_live_unix_socket_with_a_full_backlog_throws_address_in_use_without_waiting()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "f.sock");
        using var live = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        live.Bind(new UnixDomainSocketEndPoint(path));
        live.Listen(1);
        var queued = new List<Socket>();
        try
        {
            // Never accepted: connects succeed until the backlog is full, then fail at once (non-blocking).
            while (true)
            {
                var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
                queued.Add(client);
                try
                {
                    client.Connect(new UnixDomainSocketEndPoint(path));
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain)
                {
                    break;
                }

                Assert.True(queued.Count < 100, "The backlog never filled.");
            }

            // Off this thread: a blocking probe would wait for ever.
            var bind = Task.Run(() => Listeners.BindAsync(new UnixDomainSocketEndPoint(path)));
            await Assert.ThrowsAsync<AddressInUseException>(() => bind.WaitAsync(Listeners.Timeout));
        }
        finally
        {
            queued.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task A_regular_file_at_the_unix_socket_path_throws_address_in_use_and_is_not_deleted()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "f.sock");
        await File.WriteAllTextAsync(path, "precious");

        await Assert.ThrowsAsync<AddressInUseException>(async () =>
            await Listeners.BindAsync(new UnixDomainSocketEndPoint(path)));

        Assert.Equal("precious", await File.ReadAllTextAsync(path));
    }

    [Fact]
    public async Task Unix_socket_file_mode_0660_is_applied_to_the_file()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "m.sock");

        await using var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path), o => o.UnixSocketFileMode = "0660");

        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            File.GetUnixFileMode(path));
    }

    [Fact]
    public async Task Unbind_removes_the_unix_socket_file()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "u.sock");
        var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path));
        Assert.True(File.Exists(path));

        await listener.UnbindAsync();

        Assert.False(File.Exists(path));
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task IPv6_any_is_dual_mode_and_accepts_an_ipv4_client()
    {
        await using var listener = await Listeners.BindAsync(new IPEndPoint(IPAddress.IPv6Any, 0));
        var port = ((IPEndPoint)listener.EndPoint).Port;

        using var client = await Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        var accepted = await listener.AcceptAsync(withAddressInfo: true, Listeners.TimeoutToken());

        Assert.NotNull(accepted);
        Assert.True(listener.Socket.DualMode);
        var remote = Assert.IsType<IPEndPoint>(accepted.Connection.RemoteEndPoint);
        Assert.Equal(IPAddress.Loopback, remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address);
        Assert.Equal(((IPEndPoint)client.LocalEndPoint!).Port, remote.Port);
        await accepted.Connection.DisposeAsync();
    }

    internal static Socket AcceptedSocket(ConnectionContext connection) =>
        Assert.IsAssignableFrom<IConnectionSocketFeature>(connection.Features.Get<IConnectionSocketFeature>()).Socket;

    internal static int KernelBacklog(Socket listener)
    {
        var info = new byte[256];
        var length = listener.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
        Assert.True(length >= TcpInfoSackedOffset + 4, $"tcp_info is {length} bytes");
        Assert.Equal(10, info[0]); // tcpi_state: TCP_LISTEN
        return (int)BinaryPrimitives.ReadUInt32LittleEndian(info.AsSpan(TcpInfoSackedOffset));
    }

    private static int GetInt(Socket socket, int level, int name)
    {
        var value = new byte[sizeof(int)];
        Assert.Equal(sizeof(int), socket.GetRawSocketOption(level, name, value));
        return BitConverter.ToInt32(value);
    }

    private static (int OnOff, int Seconds) GetLinger(Socket socket)
    {
        var value = new byte[2 * sizeof(int)];
        Assert.Equal(value.Length, socket.GetRawSocketOption(SolSocket, SoLinger, value));
        return (BitConverter.ToInt32(value, 0), BitConverter.ToInt32(value, sizeof(int)));
    }

    /// <summary>
    /// Leaves a socket file nobody listens on, as a crashed process would. Made with libc directly: the runtime's
    /// <see cref="Socket"/> unlinks the file of a socket it bound when it is disposed.
    /// </summary>
    private static void MakeStaleSocketFile(string path)
    {
        var address = new byte[110]; // struct sockaddr_un: sa_family_t sun_family; char sun_path[108]
        BitConverter.TryWriteBytes(address.AsSpan(0, 2), (ushort)1); // AF_UNIX
        System.Text.Encoding.UTF8.GetBytes(path).CopyTo(address, 2);
        var fd = SocketCall(1, 1 | 0x80000, 0); // AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC: child processes of other tests must not inherit it
        Assert.True(fd >= 0, "socket(2) failed");
        try
        {
            Assert.Equal(0, BindCall(fd, address, address.Length));
            Assert.Equal(0, ListenCall(fd, 1));
        }
        finally
        {
            _ = CloseCall(fd);
        }

        Assert.True(File.Exists(path));
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var error = Assert.Throws<SocketException>(() => probe.Connect(new UnixDomainSocketEndPoint(path)));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "socket")]
    private static extern int SocketCall(int domain, int type, int protocol);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "bind")]
    private static extern int BindCall(int fd, byte[] address, int length);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "listen")]
    private static extern int ListenCall(int fd, int backlog);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "close")]
    private static extern int CloseCall(int fd);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialSocketGroup
{
    public const string Name = "Serial: counts the process's sockets";
}

/// <summary>Counts the sockets of the whole process, so it runs alone.</summary>
[Collection(SerialSocketGroup.Name)]
public sealed class SerialListenTests
{
    [Fact]
    public async Task Unbind_and_dispose_leave_no_socket_of_the_listener_or_its_connections_open()
    {
        // Warm up: the runtime's socket engine opens its epoll descriptors on first use.
        await using (var warm = await Listeners.BindLoopbackAsync())
        {
            using var warmClient = await Listeners.ConnectAsync(warm.EndPoint);
            await (await warm.AcceptAsync(Listeners.TimeoutToken()))!.DisposeAsync();
        }

        var before = SocketInodes();

        var listener = await Listeners.BindLoopbackAsync();
        var clients = new List<Socket>();
        var connections = new List<ConnectionContext>();
        for (var i = 0; i < 3; i++)
        {
            clients.Add(await Listeners.ConnectAsync(listener.EndPoint));
            connections.Add((await listener.AcceptAsync(Listeners.TimeoutToken()))!);
        }

        var ours = new List<string> { Inode(listener.Socket) };
        ours.AddRange(connections.Select(c => Inode(ListenTests.AcceptedSocket(c))));
        Assert.Equal(4, ours.Distinct().Count());
        Assert.All(ours, inode => Assert.Contains(inode, SocketInodes()));

        await listener.UnbindAsync();
        await listener.DisposeAsync();
        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }

        foreach (var client in clients)
        {
            client.Dispose();
        }

        // Nothing of ours is left, and no other socket appeared (sockets of earlier tests may still be closing, so
        // the count may drop, never grow).
        var after = SocketInodes();
        Assert.All(ours, inode => Assert.DoesNotContain(inode, after));
        Assert.Empty(after.Except(before));
    }

    [Fact]
    public async Task A_stopped_hosted_server_leaves_no_socket_of_its_own_open()
    {
        var before = SocketInodes();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "unix:" + Path.Combine(Listeners.TempDirectory(), "s.sock"));
        settings["NetStream:ShutdownTimeout"] = "00:00:00.200";
        var host = await EchoHost.StartAsync(settings);
        var clients = new List<Socket>();
        try
        {
            // Connected and served, and still open when the server stops: it aborts them.
            foreach (var endPoint in host.EndPoints)
            {
                for (var i = 0; i < 3; i++)
                {
                    var client = await Listeners.ConnectAsync(endPoint);
                    clients.Add(client);
                    Assert.Equal("x"u8.ToArray(), await EchoClient.EchoOnceAsync(client, "x"u8.ToArray()));
                }
            }

            await host.StopAsync();

            AssertOnlyTheClientsAreLeft(before, clients);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
            await host.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_stopped_kestrel_app_leaves_no_socket_of_its_own_open()
    {
        using var timeout = KestrelApp.Timeout();
        var before = SocketInodes();
        var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(c => c.Response.WriteAsync("ok")), timeout.Token);
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var client = await Listeners.ConnectAsync(app.EndPoint);
                clients.Add(client);
                await client.SendAsync("GET / HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray());
                Assert.NotEqual(0, await client.ReceiveAsync(new byte[256], SocketFlags.None, timeout.Token));
            }

            await app.StopAsync();

            AssertOnlyTheClientsAreLeft(before, clients);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
            await app.DisposeAsync();
        }
    }

    /// <summary>Beyond the sockets open <paramref name="before"/>, only the clients' own may be left.</summary>
    private static void AssertOnlyTheClientsAreLeft(List<string> before, List<Socket> clients)
    {
        var left = SocketInodes().Except(before).Except(clients.Select(Inode)).ToList();
        Assert.True(left.Count == 0, $"Sockets left open: {string.Join(", ", left)}.");
    }

    private static string Inode(Socket socket) =>
        new FileInfo($"/proc/self/fd/{socket.SafeHandle.DangerousGetHandle()}").LinkTarget!;

    private static List<string> SocketInodes()
    {
        var inodes = new List<string>();
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    inodes.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed between listing and reading.
            }
        }

        return inodes;
    }
}
