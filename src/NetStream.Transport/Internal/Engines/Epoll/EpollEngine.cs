using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// The <see cref="NetStreamEngine.Epoll"/> engine: a fixed set of loop threads, shared by every listener of the
/// process that asks for the same number (<see cref="NetStreamTransportOptions.EngineThreads"/>). Connections are
/// spread over the loops in turn and stay on theirs for life.
/// </summary>
internal sealed class EpollEngine : IConnectionEngine
{
    private static readonly Dictionary<int, EpollEngine> s_shared = [];

    private readonly EpollLoop[] _loops;
    private int _next;
    private int _nextAcceptor;

    private EpollEngine(int threads, ILogger logger)
    {
        _loops = new EpollLoop[threads];
        for (var i = 0; i < threads; i++)
        {
            _loops[i] = new EpollLoop(i, threads, logger);
        }
    }

    /// <summary>The engine with <paramref name="threads"/> loops, started on first use; its threads live as long as the process.</summary>
    public static EpollEngine Shared(int threads, ILogger logger)
    {
        lock (s_shared)
        {
            if (!s_shared.TryGetValue(threads, out var engine))
            {
                engine = new EpollEngine(threads, logger);
                s_shared.Add(threads, engine);
                Log.EngineStarted(logger, threads);
            }

            return engine;
        }
    }

    public IConnectionIo Attach(Socket socket, out PipeScheduler transportScheduler)
    {
        // Listeners share the loops: the turn is taken atomically.
        var loop = _loops[(uint)Interlocked.Increment(ref _next) % (uint)_loops.Length];
        transportScheduler = loop;
        return new EpollConnectionIo(loop, socket);
    }

    public IConnectionAcceptor CreateAcceptor(Socket listener) =>
        new EpollAcceptor(_loops[(uint)Interlocked.Increment(ref _nextAcceptor) % (uint)_loops.Length], listener);

    public void Release()
    {
        // Shared, and idle loops cost nothing but their threads' stacks.
    }
}
