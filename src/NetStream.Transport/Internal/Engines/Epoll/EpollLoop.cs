using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// One loop thread of the epoll engine: its own epoll instance, the connections registered with it for life, and a
/// queue of work. Each pass waits for readiness, runs the connections it reports (their receives complete here,
/// inline), then runs the queued work: the send loops of every connection that flushed since the last pass, so
/// that all a pass produced goes out in one gathered write per connection.
/// </summary>
internal sealed unsafe class EpollLoop : PipeScheduler
{
    private const int MaxEvents = 256;

    /// <summary>Queued work run per pass at most; the rest waits for the next pass, after the sockets had their turn.</summary>
    private const int MaxWorkPerPass = 1024;

    /// <summary>The tag of the loop's own wake-up descriptor; a connection's tag is never all ones.</summary>
    private const ulong WakeTag = ulong.MaxValue;

    [ThreadStatic]
    private static EpollLoop? t_current;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<Work> _work = new();
    private readonly Lock _registrations = new();
    private readonly Stack<int> _freeSlots = new();
    private IEpollHandler?[] _slots = new IEpollHandler?[64];
    private int _usedSlots;
    private uint _generation;
    private int _signalled;

    /// <summary>The prefix of the loop threads' names: <c>ns-epoll 2/4</c> is the second of an engine's four loops, <c>ns-epoll 2/4@1</c> pinned to CPU 1.</summary>
    public const string ThreadNamePrefix = "ns-epoll ";

    public EpollLoop(int index, int count, ILogger logger, int? cpu = null)
    {
        _logger = logger;
        Cpu = cpu;
        _epoll = EpollNative.EpollCreate(EpollNative.EpollCloexec);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: {Errno.Name(Marshal.GetLastPInvokeError())}.");
        }

        _wake = EpollNative.EventFd(0, EpollNative.EfdCloexec | EpollNative.EfdNonblock);
        if (_wake < 0 || EpollNative.Add(_epoll, _wake, EpollNative.EpollIn, WakeTag) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            EpollNative.Close(_epoll);
            throw new IOException($"The epoll loop's eventfd failed: {Errno.Name(errno)}.");
        }

        // "ns-epoll 2/4", or "ns-epoll 2/4@1" pinned to CPU 1 (within the 15 characters the kernel keeps of a name).
        var name = $"{ThreadNamePrefix}{index + 1}/{count}{(cpu is { } pinned ? $"@{pinned}" : string.Empty)}";
        var thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.UnsafeStart();
    }

    public override void Schedule(Action<object?> action, object? state)
    {
        _work.Enqueue(new Work(action, state));

        // On the loop, the pass runs it; elsewhere one write wakes the loop for everything queued until it looks.
        if (t_current != this && Interlocked.Exchange(ref _signalled, 1) == 0)
        {
            Wake();
        }
    }

    /// <summary>
    /// Watches <paramref name="io"/>'s socket, edge-triggered, until <see cref="Unregister"/>. Its events carry a tag
    /// (slot and generation), not the descriptor: an event that arrives after the connection left is dropped, never
    /// applied to whatever took the descriptor number next.
    /// </summary>
    public void Register(IEpollHandler io, int fd, uint events = EpollNative.EpollIn | EpollNative.EpollOut | EpollNative.EpollRdHup)
    {
        lock (_registrations)
        {
            if (!_freeSlots.TryPop(out var slot))
            {
                slot = _usedSlots++;
                if (slot == _slots.Length)
                {
                    var grown = new IEpollHandler?[_slots.Length * 2];
                    _slots.CopyTo(grown, 0);
                    Volatile.Write(ref _slots, grown);
                }
            }

            // Generation 0 is skipped when it wraps, so that no tag is all ones (the wake-up's).
            var generation = ++_generation == uint.MaxValue ? ++_generation : _generation;
            io.Tag = ((ulong)generation << 32) | (uint)slot;
            _slots[slot] = io;
        }

        if (EpollNative.Add(_epoll, fd, events | EpollNative.EpollEt, io.Tag) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            FreeSlot(io.Tag);
            throw new IOException($"epoll_ctl(EPOLL_CTL_ADD) failed: {Errno.Name(errno)}.");
        }
    }

    /// <summary>
    /// Stops watching <paramref name="fd"/> before its owner closes it. Its slot is given back on the loop, after the
    /// pass that may still hold an event for it.
    /// </summary>
    public void Unregister(IEpollHandler io, int fd)
    {
        EpollNative.Remove(_epoll, fd);
        Schedule(static state => ((IEpollHandler)state!).Loop.FreeSlot(((IEpollHandler)state!).Tag), io);
    }

    private void FreeSlot(ulong tag)
    {
        var slot = (int)(uint)tag;
        lock (_registrations)
        {
            if (_slots[slot] is { } io && io.Tag == tag)
            {
                _slots[slot] = null;
                _freeSlots.Push(slot);
            }
        }
    }

    /// <summary>Pins the calling thread (the loop's) to <paramref name="cpu"/>.</summary>
    private static bool PinTo(int cpu)
    {
        var mask = stackalloc byte[EpollNative.CpuSetBytes];
        new Span<byte>(mask, EpollNative.CpuSetBytes).Clear();
        mask[cpu / 8] = (byte)(1 << (cpu % 8));
        return EpollNative.SetAffinity(0, EpollNative.CpuSetBytes, mask) == 0;
    }

    private void Wake()
    {
        ulong one = 1;
        EpollNative.Write(_wake, &one, sizeof(ulong));
    }

    /// <summary>The CPU the loop's thread is pinned to (<see cref="NetStreamTransportOptions.IncomingCpu"/>); none by default.</summary>
    public int? Cpu { get; }

    private void Run()
    {
        t_current = this;
        if (Cpu is { } cpu && !PinTo(cpu))
        {
            Log.LoopNotPinned(_logger, cpu, Errno.Name(Marshal.GetLastPInvokeError()));
        }

        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollNative.EventSize));
        var timeout = -1;
        while (true)
        {
            var count = EpollNative.EpollWait(_epoll, events, MaxEvents, timeout);
            if (count < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != Errno.EINTR)
                {
                    // Cannot happen with a valid epoll descriptor and buffer; said, and not spun on.
                    Log.EngineWaitFailed(_logger, Errno.Name(errno));
                    Thread.Sleep(100);
                }

                continue;
            }

            var slots = Volatile.Read(ref _slots);
            for (var i = 0; i < count; i++)
            {
                var entry = events + (i * EpollNative.EventSize);
                var mask = *(uint*)entry;
                var tag = *(ulong*)(entry + EpollNative.EventDataOffset);
                if (tag == WakeTag)
                {
                    ulong drained;
                    EpollNative.Read(_wake, &drained, sizeof(ulong));
                    continue;
                }

                var slot = (int)(uint)tag;
                if (slot < slots.Length && slots[slot] is { } io && io.Tag == tag)
                {
                    Dispatch(io, mask);
                }
            }

            timeout = RunWork() ? 0 : -1;
        }
    }

    private void Dispatch(IEpollHandler io, uint events)
    {
        try
        {
            io.OnReadiness(events);
        }
        catch (Exception e)
        {
            // A connection's code failing must not end the loop that serves all the others.
            Log.EngineCallbackFailed(_logger, e);
        }
    }

    /// <summary>Runs the queued work; true if more is left for the next pass.</summary>
    private bool RunWork()
    {
        // Reset before draining: whatever is queued after this wakes the loop again, whatever came before is run now.
        Volatile.Write(ref _signalled, 0);
        for (var run = 0; run < MaxWorkPerPass; run++)
        {
            if (!_work.TryDequeue(out var work))
            {
                return false;
            }

            try
            {
                work.Callback(work.State);
            }
            catch (Exception e)
            {
                Log.EngineCallbackFailed(_logger, e);
            }
        }

        return !_work.IsEmpty;
    }

    private readonly record struct Work(Action<object?> Callback, object? State);
}
