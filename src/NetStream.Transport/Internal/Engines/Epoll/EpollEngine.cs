using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// The <see cref="NetStreamEngine.Epoll"/> engine: a fixed set of loop threads, shared by every listener of the
/// process that asks for the same number (<see cref="NetStreamTransportOptions.EngineThreads"/>) and the same
/// <see cref="NetStreamTransportOptions.IncomingCpu"/>. Connections are spread over the loops in turn (or by the CPU
/// that received their packets) and stay on theirs for life.
/// </summary>
internal sealed unsafe class EpollEngine : IConnectionEngine
{
    private const int SoIncomingCpu = 49;

    private static readonly Dictionary<(int Threads, bool IncomingCpu), EpollEngine> s_shared = [];

    private readonly EpollLoop[] _loops;
    private readonly bool _steered;
    private int _next;
    private int _nextAcceptor;

    private EpollEngine(int threads, int[]? cpus, ILogger logger)
    {
        _loops = new EpollLoop[threads];
        _steered = cpus is not null;
        for (var i = 0; i < threads; i++)
        {
            _loops[i] = new EpollLoop(i, threads, logger, cpus?[i % cpus.Length]);
        }
    }

    /// <summary>
    /// The engine with <paramref name="threads"/> loops, started on first use; its threads live as long as the process.
    /// With <paramref name="incomingCpu"/> its loops are pinned one to each CPU the process may use, and a connection
    /// goes to the loop of the CPU that received its packets (<c>SO_INCOMING_CPU</c>).
    /// </summary>
    public static EpollEngine Shared(int threads, bool incomingCpu, ILogger logger)
    {
        lock (s_shared)
        {
            if (!s_shared.TryGetValue((threads, incomingCpu), out var engine))
            {
                var cpus = incomingCpu ? AllowedCpus() : null;
                engine = new EpollEngine(threads, cpus, logger);
                s_shared.Add((threads, incomingCpu), engine);
                if (cpus is not null)
                {
                    Log.EnginePinned(logger, threads, string.Join(",", engine._loops.Select(l => l.Cpu)));
                }
                else
                {
                    Log.EngineStarted(logger, threads);
                }
            }

            return engine;
        }
    }

    public IConnectionIo Attach(Socket socket, out PipeScheduler transportScheduler)
    {
        var loop = LoopOfIncomingCpu(socket)
            // Listeners share the loops: the turn is taken atomically.
            ?? _loops[(uint)Interlocked.Increment(ref _next) % (uint)_loops.Length];
        transportScheduler = loop;
        return new EpollConnectionIo(loop, socket);
    }

    /// <summary>With pinned loops: the loop on the CPU whose queue received the socket's packets, if one is.</summary>
    private EpollLoop? LoopOfIncomingCpu(Socket socket)
    {
        if (!_steered)
        {
            return null;
        }

        Span<byte> value = stackalloc byte[sizeof(int)];
        try
        {
            socket.GetRawSocketOption(SocketOptionNames.SolSocket, SoIncomingCpu, value);
        }
        catch (SocketException)
        {
            return null;
        }

        var cpu = BitConverter.ToInt32(value);
        EpollLoop? found = null;
        var start = (uint)Interlocked.Increment(ref _next);
        for (var i = 0; i < _loops.Length && found is null; i++)
        {
            // With more loops than CPUs, the loops of one CPU take turns.
            var loop = _loops[(start + i) % (uint)_loops.Length];
            if (loop.Cpu == cpu)
            {
                found = loop;
            }
        }

        return found;
    }

    /// <summary>The CPUs the process may run on (<c>sched_getaffinity</c>), in order.</summary>
    private static int[] AllowedCpus()
    {
        var mask = stackalloc byte[EpollNative.CpuSetBytes];
        new Span<byte>(mask, EpollNative.CpuSetBytes).Clear();
        if (EpollNative.GetAffinity(0, EpollNative.CpuSetBytes, mask) < 0)
        {
            return [.. Enumerable.Range(0, Environment.ProcessorCount)];
        }

        var cpus = new List<int>();
        for (var cpu = 0; cpu < EpollNative.CpuSetBytes * 8; cpu++)
        {
            if ((mask[cpu / 8] & (1 << (cpu % 8))) != 0)
            {
                cpus.Add(cpu);
            }
        }

        return [.. cpus];
    }

    public IConnectionAcceptor CreateAcceptor(Socket listener) =>
        new EpollAcceptor(_loops[(uint)Interlocked.Increment(ref _nextAcceptor) % (uint)_loops.Length], listener);

    public void Release()
    {
        // Shared, and idle loops cost nothing but their threads' stacks.
    }
}
