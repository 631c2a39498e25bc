using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NetStream.Hosting.Internal;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;
using NetStream.Transport.Internal.Engines.Epoll;
using NetStream.Transport.Internal.Engines.Sockets;

namespace NetStream.Tests.Transport;

/// <summary>
/// The engines themselves: that the suite runs on the engine it names, where application code runs, and that an epoll
/// loop survives every way a connection can end and costs nothing while idle.
/// </summary>
public sealed class EngineTests
{
    [Fact]
    public async Task The_suite_runs_on_the_engine_its_assembly_names()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (NetStreamConnection)(await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        Assert.Equal(EngineUnderTest.Current, listener.Engine);
        Assert.IsType(EngineUnderTest.Current == NetStreamEngine.Epoll ? typeof(EpollConnectionIo) : typeof(SocketsConnectionIo), connection.Io);
        await AssertEchoesAsync(connection, client, 100_000);
    }

    [Theory]
    [InlineData(NetStreamEngine.Epoll, false)]
    [InlineData(NetStreamEngine.Epoll, true)]
    [InlineData(NetStreamEngine.Sockets, false)]
    public async Task Application_code_runs_on_the_thread_pool_unless_inline_scheduling_is_asked_for(NetStreamEngine engine, bool inline)
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => (o.Engine, o.UnsafePreferInlineScheduling) = (engine, inline));
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        // Nothing was sent yet: the read waits, and its continuation runs where the transport completes it.
        var reading = ThreadOfAsync(connection.Transport.Input);
        await client.SendAsync("x"u8.ToArray());
        var (name, pooled) = await reading.WaitAsync(Listeners.Timeout);

        if (inline && engine == NetStreamEngine.Epoll)
        {
            Assert.StartsWith(EpollLoop.ThreadNamePrefix, name);
        }
        else
        {
            Assert.True(pooled, $"ran on {name}");
        }
    }

    [Fact]
    public async Task An_epoll_loop_serves_on_after_a_connection_ends_in_every_state()
    {
        // One loop, its own: every connection below shares it, so each ending must leave it serving the next.
        void Options(NetStreamTransportOptions o) => (o.Engine, o.EngineThreads, o.MaxReadBufferSize, o.MaxWriteBufferSize, o.CloseTimeout) =
            (NetStreamEngine.Epoll, 1, 4096, 4096, TimeSpan.FromSeconds(2));
        await using var listener = await Listeners.BindLoopbackAsync(Options);

        // Idle, waiting for data: the peer resets.
        var (idle, idleClient) = await AcceptAsync(listener);
        Reset(idleClient);
        await AssertGoneAsync(idle);

        // Sending to a peer that never reads, the socket full: the peer resets.
        var (sending, sendingClient) = await AcceptAsync(listener);
        sendingClient.ReceiveBufferSize = 4096;
        var writing = sending.Transport.Output.WriteAsync(new byte[8 * 1024 * 1024]).AsTask();
        await WaitUntilAsync(() => sendingClient.Available > 0);
        Reset(sendingClient);
        await AssertGoneAsync(sending);
        await writing.WaitAsync(Listeners.Timeout);

        // Input full, the application not reading: the application aborts.
        var (parked, parkedClient) = await AcceptAsync(listener);
        _ = parkedClient.SendAsync(new byte[64 * 1024]);
        await WaitUntilAsync(() => parked.Transport.Input.TryRead(out var r) && ReturnUnread(parked.Transport.Input, r) >= 4096);
        parked.Abort();
        await AssertGoneAsync(parked);
        parkedClient.Dispose();

        // Closing gracefully while the peer holds the output back: the close timeout resets it.
        var (closing, closingClient) = await AcceptAsync(listener);
        closingClient.ReceiveBufferSize = 4096;
        var unsent = closing.Transport.Output.WriteAsync(new byte[8 * 1024 * 1024]).AsTask();
        await WaitUntilAsync(() => closingClient.Available > 0);
        await closing.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);
        await unsent.WaitAsync(Listeners.Timeout);
        closingClient.Dispose();

        // The handler failing: its output completed with the exception.
        var (failing, failingClient) = await AcceptAsync(listener);
        await failing.Transport.Output.CompleteAsync(new InvalidOperationException("handler failed"));
        await AssertGoneAsync(failing);
        failingClient.Dispose();

        var (next, nextClient) = await AcceptAsync(listener);
        await AssertEchoesAsync(next, nextClient, 50_000);
        await next.DisposeAsync();
        nextClient.Dispose();
        idleClient.Dispose();
        sendingClient.Dispose();
    }

    [Fact]
    public async Task Hundreds_of_connections_closing_at_once_all_end_and_give_their_descriptors_back()
    {
        const int Count = 300;
        await using var listener = await Listeners.BindLoopbackAsync(o => (o.Engine, o.EngineThreads) = (NetStreamEngine.Epoll, 2));
        var clients = new List<Socket>();
        var connections = new List<ConnectionContext>();
        for (var i = 0; i < Count; i++)
        {
            clients.Add(await Listeners.ConnectAsync(listener.EndPoint));
            connections.Add((await listener.AcceptAsync(Listeners.TimeoutToken()))!);
        }

        var closed = connections.Select(c => WhenCancelled(c.ConnectionClosed)).ToArray();
        for (var i = 0; i < Count; i++)
        {
            // Half reset, half close with FIN.
            if (i % 2 == 0)
            {
                Reset(clients[i]);
            }
            else
            {
                clients[i].Dispose();
            }
        }

        await Task.WhenAll(closed).WaitAsync(Listeners.Timeout);
        await Task.WhenAll(connections.Select(c => c.DisposeAsync().AsTask())).WaitAsync(Listeners.Timeout);
        foreach (NetStreamConnection connection in connections)
        {
            Assert.Throws<ObjectDisposedException>(() => connection.Socket.Available);
        }
    }

    [Fact]
    public async Task An_idle_epoll_loop_uses_no_cpu()
    {
        // An engine of its own (seven loops: no other test asks for seven), with idle connections on it.
        await using var listener = await Listeners.BindLoopbackAsync(o => (o.Engine, o.EngineThreads) = (NetStreamEngine.Epoll, 7));
        var clients = new List<Socket>();
        var connections = new List<ConnectionContext>();
        for (var i = 0; i < 20; i++)
        {
            clients.Add(await Listeners.ConnectAsync(listener.EndPoint));
            connections.Add((await listener.AcceptAsync(Listeners.TimeoutToken()))!);
        }

        var before = LoopCpuTicks(7);
        await Task.Delay(TimeSpan.FromSeconds(1)); // the window measured, not a wait for an event
        var used = LoopCpuTicks(7) - before;

        // Ticks of 10 ms: a loop that spins would use about 100 per second and thread.
        Assert.True(used <= 2, $"the idle loops used {used} ticks of CPU in a second");
        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }

        clients.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task A_kestrel_endpoint_picks_its_own_engine_and_shards()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseNetStreamTransport(o => (o.Engine, o.AcceptShards) = (NetStreamEngine.Sockets, 2)));
                kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseNetStreamTransport(o => o.Engine = NetStreamEngine.Epoll));
            },
            web => web.MapGet("/", () => "engine"),
            timeout.Token);
        var listeners = app.App.Services.GetRequiredService<ListenerRegistry>().Listeners.ToList();

        var ports = app.Addresses.Select(a => new Uri(a).Port).ToList();
        Assert.Equal([NetStreamEngine.Sockets, NetStreamEngine.Sockets], listeners.Where(l => ((IPEndPoint)l.EndPoint).Port == ports[0]).Select(l => l.Engine));
        Assert.Equal([NetStreamEngine.Epoll], listeners.Where(l => ((IPEndPoint)l.EndPoint).Port == ports[1]).Select(l => l.Engine));
        foreach (var address in app.Addresses)
        {
            using var http = new System.Net.Http.HttpClient();
            Assert.Equal("engine", await http.GetStringAsync(address, timeout.Token));
        }
    }

    [Fact]
    public async Task A_hosted_endpoint_picks_its_own_engine()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
        settings["NetStream:Engine"] = "Sockets";
        settings["NetStream:Endpoints:E1:Engine"] = "Epoll";
        await using var host = await EchoHost.StartAsync(settings);
        var server = host.Host.Services.GetServices<IHostedService>().OfType<NetStreamServer>().Single();

        Assert.Equal([NetStreamEngine.Sockets, NetStreamEngine.Epoll], server.BoundListeners.Select(l => l.Engine));
        foreach (var endPoint in host.EndPoints)
        {
            using var client = await Listeners.ConnectAsync(endPoint);
            await client.SendAsync("ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await Listeners.ReceiveAsync(client, 4));
        }
    }

    private static async Task<(string? Name, bool Pooled)> ThreadOfAsync(PipeReader input)
    {
        var result = await input.ReadAsync().ConfigureAwait(false);
        var thread = Thread.CurrentThread;
        input.AdvanceTo(result.Buffer.End);
        return (thread.Name, thread.IsThreadPoolThread);
    }

    private static async Task<(ConnectionContext Connection, Socket Client)> AcceptAsync(NetStreamListener listener)
    {
        var client = await Listeners.ConnectAsync(listener.EndPoint);
        return ((await listener.AcceptAsync(Listeners.TimeoutToken()))!, client);
    }

    private static async Task AssertEchoesAsync(ConnectionContext connection, Socket client, int bytes)
    {
        var echoing = Task.Run(async () =>
        {
            var copied = 0;
            while (copied < bytes)
            {
                var result = await connection.Transport.Input.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    await connection.Transport.Output.WriteAsync(segment);
                }

                copied += (int)result.Buffer.Length;
                connection.Transport.Input.AdvanceTo(result.Buffer.End);
            }
        });
        var sent = Enumerable.Range(0, bytes).Select(i => (byte)(i * 7)).ToArray();
        var sending = client.SendAsync(sent);
        var echoed = await Listeners.ReceiveAsync(client, bytes);
        await sending;
        await echoing.WaitAsync(Listeners.Timeout);
        Assert.Equal(sent, echoed);
    }

    private static async Task AssertGoneAsync(ConnectionContext connection)
    {
        await WhenCancelled(connection.ConnectionClosed).WaitAsync(Listeners.Timeout);
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);
    }

    private static long ReturnUnread(PipeReader input, ReadResult result)
    {
        input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        return result.Buffer.Length;
    }

    private static void Reset(Socket client)
    {
        client.LingerState = new LingerOption(true, 0);
        client.Dispose();
    }

    private static Task WhenCancelled(CancellationToken token)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => done.TrySetResult());
        return done.Task;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        while (!condition())
        {
            await Task.Delay(10, timeout.Token);
        }
    }

    /// <summary>utime + stime of the loop threads of the engine with <paramref name="threads"/> loops.</summary>
    private static long LoopCpuTicks(int threads) => LoopThreads.Read("stat")
        .Where(t => t.Name.EndsWith($"/{threads}", StringComparison.Ordinal))
        .Select(t => t.Text.Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        .Sum(fields => long.Parse(fields[11]) + long.Parse(fields[12]));
}
