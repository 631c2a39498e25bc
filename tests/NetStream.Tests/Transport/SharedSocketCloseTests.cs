using System.Net;
using System.Net.Sockets;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

/// <summary>
/// A listener that lets go of a socket another holder keeps (the old process of a handoff, an inherited descriptor)
/// leaves it as it was for that holder: listening, with no option changed, even when it lets go in the middle of
/// accepting under load.
/// </summary>
public sealed class SharedSocketCloseTests
{
    private const int Rounds = 25;

    [Theory]
    [InlineData(NetStreamEngine.Sockets)]
    [InlineData(NetStreamEngine.Epoll)]
    public async Task Unbinding_while_accepting_under_load_leaves_the_other_copy_listening(NetStreamEngine engine)
    {
        for (var round = 0; round < Rounds; round++)
        {
            using var original = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            original.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            original.Listen(1024);
            var endPoint = (IPEndPoint)original.LocalEndPoint!;
            var copy = NetStream.Tests.Kestrel.FileHandleTests.DuplicateCloseOnExec(original);
            await using var listener = await Listeners.BindAsync(new TakenFileHandleEndPoint(copy), o => o.Engine = engine);

            using var stop = new CancellationTokenSource();
            var accepted = 0;
            var clients = Task.Run(() => ConnectUntilAsync(endPoint, stop.Token));
            var accepting = Task.Run(async () =>
            {
                while (await listener.AcceptAsync() is { } connection)
                {
                    Interlocked.Increment(ref accepted);
                    await connection.DisposeAsync();
                }
            });

            // Let go while the accept loop is busy: some rounds catch an accept inside its system call.
            using var timeout = new CancellationTokenSource(Listeners.Timeout);
            while (Volatile.Read(ref accepted) < 20 + round)
            {
                await Task.Delay(1, timeout.Token);
            }

            await listener.UnbindAsync();
            await accepting.WaitAsync(Listeners.Timeout);
            await stop.CancelAsync();
            await clients.WaitAsync(Listeners.Timeout);

            // The socket itself, not a connection through it: the clients' last connects may fill its queue.
            Assert.True(SocketConfigurator.IsListening(original), $"round {round}: the socket stopped listening when {engine} let go of its copy");
            Assert.False(original.LingerState?.Enabled ?? false, $"round {round}: the socket was left with SO_LINGER on");
        }
    }

    private static async Task ConnectUntilAsync(IPEndPoint endPoint, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await client.ConnectAsync(endPoint, stop);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                // Stopped, or the backlog was full for a moment.
            }
        }
    }
}
