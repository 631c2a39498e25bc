using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Transport;

/// <summary>
/// A connection's own work never waits on the application's threads: not on the SynchronizationContext of the thread
/// that accepted it, and a hook's slow cleanup does not hold up the I/O queue other connections share.
/// </summary>
public sealed class ConnectionThreadingTests
{
    /// <summary>Queues what is posted to it; runs it only when pumped.</summary>
    private sealed class QueueContext : SynchronizationContext
    {
        public readonly ConcurrentQueue<(SendOrPostCallback, object?)> Posted = new();

        public override void Post(SendOrPostCallback d, object? state) => Posted.Enqueue((d, state));

        public void Pump()
        {
            while (Posted.TryDequeue(out var item))
            {
                item.Item1(item.Item2);
            }
        }
    }

    [Fact]
    public async Task Dispose_does_not_depend_on_the_accepting_threads_SynchronizationContext()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        client.Send("x"u8);
        client.Shutdown(SocketShutdown.Send);

        var context = new QueueContext();
        var previous = SynchronizationContext.Current;
        ValueTask<ConnectionContext?> accepting;
        SynchronizationContext.SetSynchronizationContext(context);
        try
        {
            // The peer's data and FIN are there already: the receive loop runs to its end on this thread.
            accepting = listener.AcceptAsync();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        var connection = (await accepting)!;
        var disposing = connection.DisposeAsync().AsTask();
        var finished = await Task.WhenAny(disposing, Task.Delay(TimeSpan.FromSeconds(3)));
        var posted = context.Posted.Count;
        context.Pump();
        await disposing.WaitAsync(Listeners.Timeout);
        Assert.True(finished == disposing, $"DisposeAsync did not complete in 3 s: {posted} continuation(s) of the connection were posted to the accepting thread's SynchronizationContext.");
    }

    [Fact]
    public async Task A_slow_OnClosed_callback_does_not_stall_other_connections_on_the_same_IO_queue()
    {
        var services = BareServices.With(("NetStream:IOQueueCount", "1"));
        using var release = new ManualResetEventSlim();
        var first = 0;
        services.AddNetStream().AddAcceptedHook(context =>
        {
            if (Interlocked.Increment(ref first) == 1)
            {
                // A hook's cleanup that takes its time (a synchronous call out, a lock held elsewhere...).
                context.OnClosed(_ => release.Wait(TimeSpan.FromSeconds(20)), null);
            }

            return ValueTask.FromResult(AcceptedResult.Pass);
        });
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<NetStreamTransportFactory>();
        Assert.Equal(1, factory.Options.IOQueueCount);
        var chain = provider.GetRequiredService<AcceptedHookChain>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), factory.Options);

        async Task ServeNextAsync(ConnectionDelegate app)
        {
            var accepted = await listener.AcceptAsync(withAddressInfo: false);
            await using var connection = accepted!.Connection;
            await chain.RunAsync(accepted, app);
        }

        try
        {
            // A: answered, then closed: its OnClosed runs (and blocks) on the send loop's thread, the I/O queue's.
            var serveA = ServeNextAsync(async c => await c.Transport.Output.WriteAsync("a"u8.ToArray()));
            using var a = await Listeners.ConnectAsync(listener.EndPoint);
            Assert.Equal("a"u8.ToArray(), await Listeners.ReceiveAsync(a, 1));

            // B: an echo on the same (only) I/O queue.
            var serveB = ServeNextAsync(TestEcho.EchoAsync);
            using var b = await Listeners.ConnectAsync(listener.EndPoint);
            b.Send("b"u8);
            var receive = Listeners.ReceiveAsync(b, 1);
            var done = await Task.WhenAny(receive, Task.Delay(TimeSpan.FromSeconds(5)));
            Assert.True(done == receive, "Connection B got no echo in 5 s: connection A's OnClosed callback blocks the I/O queue they share.");

            // A's close waits a moment for the callback (slots back before the peer sees the close), not for ever.
            var end = a.ReceiveAsync(new byte[1], SocketFlags.None);
            Assert.True(await Task.WhenAny(end, Task.Delay(TimeSpan.FromSeconds(10))) == end, "Connection A's peer saw no close in 10 s: its close waits for the blocked OnClosed callback.");
            Assert.Equal(0, await end);
        }
        finally
        {
            release.Set();
        }
    }
}
