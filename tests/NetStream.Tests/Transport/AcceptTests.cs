using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;

namespace NetStream.Tests.Transport;

public sealed class AcceptTests
{
    [Fact]
    public async Task Bind_port_zero_reports_the_port_the_kernel_chose()
    {
        await using var listener = await Listeners.BindLoopbackAsync();

        var bound = Assert.IsType<IPEndPoint>(listener.EndPoint);
        Assert.NotEqual(0, bound.Port);
        Assert.True(listener.IsListening);
    }

    [Fact]
    public async Task Accepted_connection_moves_bytes_both_ways_and_ends_with_fin()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = await listener.AcceptAsync(Listeners.TimeoutToken());
        Assert.NotNull(connection);

        await client.SendAsync("ping"u8.ToArray());
        var read = await connection.Transport.Input.ReadAtLeastAsync(4, Listeners.TimeoutToken());
        Assert.Equal("ping", Encoding.ASCII.GetString(read.Buffer.ToArray()));
        connection.Transport.Input.AdvanceTo(read.Buffer.End);

        await connection.Transport.Output.WriteAsync("pong"u8.ToArray());
        await connection.Transport.Output.CompleteAsync();

        // "pong" then FIN: the second read returns 0 bytes.
        Assert.Equal("pong", Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 64)));
        await connection.DisposeAsync();
        await connection.DisposeAsync(); // idempotent
    }

    [Fact]
    public async Task Abort_resets_the_connection()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        connection.Abort();

        var error = await Assert.ThrowsAsync<SocketException>(async () =>
            await client.ReceiveAsync(new byte[16], SocketFlags.None, Listeners.TimeoutToken()));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
        await WaitAsync(connection.ConnectionClosed);
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task Peer_fin_completes_input_and_fires_connection_closed_while_output_still_reaches_the_peer()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        await client.SendAsync("last words"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);
        var input = connection.Transport.Input;
        var result = await input.ReadAsync(Listeners.TimeoutToken());
        while (!result.IsCompleted)
        {
            // The bytes may come before the FIN does.
            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            result = await input.ReadAsync(Listeners.TimeoutToken());
        }

        Assert.Equal("last words"u8.ToArray(), result.Buffer.ToArray());
        input.AdvanceTo(result.Buffer.End);

        // As on Kestrel's Sockets transport: the token says the peer is gone (Kestrel aborts its requests on it).
        await WaitAsync(connection.ConnectionClosed);

        // Half-closed, not closed: the reply still goes out, and then FIN.
        await connection.Transport.Output.WriteAsync("reply"u8.ToArray());
        await connection.Transport.Output.CompleteAsync();
        Assert.Equal("reply"u8.ToArray(), await Listeners.ReceiveAsync(client, 64));
        await connection.DisposeAsync();
    }

    [Fact]
    public async Task A_graceful_close_with_unread_input_still_delivers_every_byte_written_and_then_fin()
    {
        // The input pauses at once, so what the client sends stays unread in the kernel; the client's small receive
        // buffer keeps most of the reply in the server's send queue when the connection is closed.
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.MaxReadBufferSize = 1;
            o.SendBufferSize = 2 * 1024 * 1024;
        });
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        await client.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        await client.SendAsync(new byte[64 * 1024]);

        var reply = EchoClient.RandomBytes(512 * 1024);
        await connection.Transport.Output.WriteAsync(reply);
        await connection.DisposeAsync();

        Assert.Equal(reply, await Listeners.ReceiveAsync(client, reply.Length + 1));
    }

    [Fact]
    public async Task A_connection_goes_on_working_after_its_listener_is_disposed()
    {
        var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        await listener.DisposeAsync();

        await client.SendAsync("after"u8.ToArray());
        var read = await connection.Transport.Input.ReadAtLeastAsync(5, Listeners.TimeoutToken());
        Assert.Equal("after"u8.ToArray(), read.Buffer.ToArray());
        connection.Transport.Input.AdvanceTo(read.Buffer.End);
        await connection.Transport.Output.WriteAsync(new byte[64 * 1024]);
        await connection.DisposeAsync();
        Assert.Equal(64 * 1024, (await Listeners.ReceiveAsync(client, 64 * 1024 + 1)).Length);
    }

    [Fact]
    public async Task Accept_with_address_info_returns_tcp_v4_endpoints()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);

        var accepted = await listener.AcceptAsync(withAddressInfo: true, Listeners.TimeoutToken());

        var info = accepted!.AddressInfo!;
        Assert.Equal(AddressFamily.InterNetwork, info.Family);
        Assert.Equal(SocketType.Stream, info.SocketType);
        Assert.Equal(ProtocolType.Tcp, info.Protocol);
        Assert.Equal(listener.EndPoint, info.LocalEndPoint);
        Assert.Equal(client.LocalEndPoint, info.RemoteEndPoint);
        Assert.Null(info.PeerCredentials);
        await accepted.Connection.DisposeAsync();
    }

    [Fact]
    public async Task Accept_with_address_info_returns_tcp_v6_endpoints()
    {
        await using var listener = await Listeners.BindAsync(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        using var client = await Listeners.ConnectAsync(listener.EndPoint);

        var accepted = await listener.AcceptAsync(withAddressInfo: true, Listeners.TimeoutToken());

        var info = accepted!.AddressInfo!;
        Assert.Equal(AddressFamily.InterNetworkV6, info.Family);
        Assert.Equal(SocketType.Stream, info.SocketType);
        Assert.Equal(ProtocolType.Tcp, info.Protocol);
        Assert.Equal(listener.EndPoint, info.LocalEndPoint);
        Assert.Equal(client.LocalEndPoint, info.RemoteEndPoint);
        Assert.Null(info.PeerCredentials);
        await accepted.Connection.DisposeAsync();
    }

    [Fact]
    public async Task Accept_with_address_info_on_a_unix_socket_reads_peer_credentials()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "s.sock");
        await using var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path));
        using var client = await Listeners.ConnectAsync(listener.EndPoint);

        var accepted = await listener.AcceptAsync(withAddressInfo: true, Listeners.TimeoutToken());

        var info = accepted!.AddressInfo!;
        Assert.Equal(AddressFamily.Unix, info.Family);
        Assert.Equal(path, info.LocalEndPoint?.ToString());
        Assert.Equal(Environment.ProcessId, info.PeerCredentials?.ProcessId);
        Assert.Equal((int)GetUid(), info.PeerCredentials?.UserId);
        Assert.Equal((int)GetGid(), info.PeerCredentials?.GroupId);
        await accepted.Connection.DisposeAsync();
    }

    [Fact]
    public async Task Accept_without_address_info_leaves_it_null()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);

        var accepted = await listener.AcceptAsync(withAddressInfo: false, Listeners.TimeoutToken());

        Assert.Null(accepted!.AddressInfo);
        await accepted.Connection.DisposeAsync();
    }

    [Fact]
    public async Task Accept_handle_returns_a_working_raw_socket_and_runs_no_hook()
    {
        var factory = new NetStreamTransportFactory(
            Microsoft.Extensions.Options.Options.Create(new NetStreamTransportOptions()),
            new CountingHookServices(),
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), factory.Options);
        using var client = await Listeners.ConnectAsync(listener.EndPoint);

        using var handle = await listener.AcceptHandleAsync(Listeners.TimeoutToken());
        Assert.NotNull(handle);

        // The handle is the caller's: no finalizer of the listener's may close it.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(handle.IsClosed);

        using var raw = new Socket(handle);
        await client.SendAsync("raw"u8.ToArray());
        var buffer = new byte[3];
        Assert.Equal(3, await raw.ReceiveAsync(buffer));
        Assert.Equal("raw", Encoding.ASCII.GetString(buffer));
        Assert.Equal(0, CountingHookServices.Hook.Calls);
    }

    [Fact]
    public async Task Accept_after_unbind_returns_null()
    {
        var listener = await Listeners.BindLoopbackAsync();
        var pending = listener.AcceptAsync(Listeners.TimeoutToken()).AsTask();

        await listener.UnbindAsync();

        Assert.Null(await pending.WaitAsync(Listeners.Timeout));
        Assert.Null(await listener.AcceptAsync(Listeners.TimeoutToken()));
        Assert.False(listener.IsListening);
        await listener.DisposeAsync();
    }

    [Fact]
    public async Task Reset_storm_leaves_the_accept_loop_serving()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        var accepted = System.Threading.Channels.Channel.CreateUnbounded<ConnectionContext>();
        var loop = Task.Run(async () =>
        {
            while (await listener.AcceptAsync() is { } connection)
            {
                accepted.Writer.TryWrite(connection);
            }

            accepted.Writer.Complete();
        });

        for (var i = 0; i < 200; i++)
        {
            using var client = await Listeners.ConnectAsync(listener.EndPoint);
            client.LingerState = new LingerOption(true, 0); // close = RST
        }

        using var survivor = await Listeners.ConnectAsync(listener.EndPoint);
        await survivor.SendAsync("still here"u8.ToArray());

        // The loop is still accepting: the survivor shows up among the accepted connections.
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        var all = new List<ConnectionContext>();
        ConnectionContext served;
        do
        {
            served = await accepted.Reader.ReadAsync(timeout.Token);
            all.Add(served);
        }
        while (!Equals(served.RemoteEndPoint, survivor.LocalEndPoint));

        var read = await served.Transport.Input.ReadAtLeastAsync(10, timeout.Token);
        Assert.Equal("still here", Encoding.ASCII.GetString(read.Buffer.ToArray()));
        await listener.UnbindAsync();
        await loop.WaitAsync(Listeners.Timeout);
        all.AddRange(accepted.Reader.ReadAllAsync().ToBlockingEnumerable());
        foreach (var connection in all)
        {
            await connection.DisposeAsync();
        }
    }

    private static Task WaitAsync(CancellationToken token)
    {
        var done = new TaskCompletionSource();
        token.Register(() => done.TrySetResult());
        return done.Task.WaitAsync(Listeners.Timeout);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getuid")]
    private static extern uint GetUid();

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getgid")]
    private static extern uint GetGid();

    private sealed class CountingHookServices : IServiceProvider
    {
        public static readonly CountingHook Hook = new();

        public object? GetService(Type serviceType) =>
            serviceType == typeof(NetStream.Transport.Hooks.INewConnectionHook) ? Hook : null;

        public sealed class CountingHook : NetStream.Transport.Hooks.INewConnectionHook
        {
            public int Calls;

            public ConnectionContext NewConnection(Socket socket, NetStream.Transport.Hooks.NewConnectionContext context)
            {
                Interlocked.Increment(ref Calls);
                return context.CreateDefault(socket);
            }
        }
    }
}
