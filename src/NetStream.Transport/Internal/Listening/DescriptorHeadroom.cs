using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// The process's file descriptors, as accept loops see them: whether accepting one more connection would leave fewer
/// than a reserve free under <c>RLIMIT_NOFILE</c>. A .NET process out of descriptors cannot load an assembly, read
/// <c>/proc</c> or start a thread, and dies of it ("Out of memory."): its connections must never take the descriptors
/// the runtime needs. Connections it holds back wait in the kernel's backlog.
/// </summary>
/// <remarks>
/// Counting <c>/proc/self/fd</c> costs a pass over every open descriptor, so it is counted now and then and kept up to
/// date in between with the connections NetStream opened and closed; near the limit the count is taken afresh.
/// </remarks>
internal sealed partial class DescriptorHeadroom
{
    private const int RlimitNofile = 7;
    private const int ODirectory = 0x10000; // O_DIRECTORY
    private const int OCloexec = 0x80000;   // O_CLOEXEC

    /// <summary>How old a count may be while far from the limit (less than half of it open).</summary>
    private static readonly TimeSpan s_farRecount = TimeSpan.FromSeconds(5);

    /// <summary>How old a count may be near the limit: descriptors opened by others are seen this late at most.</summary>
    private static readonly TimeSpan s_nearRecount = TimeSpan.FromMilliseconds(100);

    private readonly Lock _gate = new();
    private int _counted;
    private long _countedAt;
    private long _limit = long.MaxValue;
    private int _openedSince;
    private int _closedSince;
    private TaskCompletionSource? _closed;

    /// <summary>The one of this process.</summary>
    public static DescriptorHeadroom Process { get; } = new();

    /// <summary>
    /// The reserve when none is configured: a tenth of the limit, at least 64 and at most 1024, and never more than half
    /// the limit (under a limit of 128 or less, 64 would leave little or nothing to accept with).
    /// </summary>
    public static int DefaultReserve(long limit) => (int)Math.Min(Math.Clamp(limit / 10, 64, 1024), limit / 2);

    /// <summary>The soft <c>RLIMIT_NOFILE</c> now; <see cref="long.MaxValue"/> when unlimited or unknown.</summary>
    public static long ReadLimit() =>
        GetRlimit(RlimitNofile, out var limit) == 0 && limit.Current < long.MaxValue ? (long)limit.Current : long.MaxValue;

    /// <summary>
    /// Whether one more descriptor leaves at least <paramref name="reserve"/> free (the default's when
    /// <see langword="null"/>; 0 never holds back).
    /// </summary>
    /// <param name="reserve">Descriptors to keep free.</param>
    /// <param name="open">The descriptors counted open, for the log line.</param>
    /// <param name="limit">The limit, for the log line.</param>
    public bool HasRoom(int? reserve, out int open, out long limit)
    {
        lock (_gate)
        {
            var age = Stopwatch.GetElapsedTime(_countedAt);
            open = _counted + _openedSince - _closedSince;
            limit = _limit;
            var room = limit - (reserve ?? DefaultReserve(limit));
            if (reserve == 0 || (_countedAt != 0 && open < room && age < (open < limit / 2 ? s_farRecount : s_nearRecount)))
            {
                return true;
            }

            Recount();
            open = _counted;
            limit = _limit;
            return open < limit - (reserve ?? DefaultReserve(limit));
        }
    }

    /// <summary>A descriptor NetStream took (an accepted connection).</summary>
    public void Opened() => Interlocked.Increment(ref _openedSince);

    /// <summary>A descriptor NetStream closed; wakes accept loops that wait for room.</summary>
    public void Closed()
    {
        Interlocked.Increment(ref _closedSince);
        Volatile.Read(ref _closed)?.TrySetResult();
    }

    /// <summary>
    /// A task that ends at the next descriptor NetStream closes. Taken before looking for room, so that a close in
    /// between is not missed.
    /// </summary>
    public Task NextClose()
    {
        var closed = Volatile.Read(ref _closed);
        if (closed is not null && !closed.Task.IsCompleted)
        {
            return closed.Task;
        }

        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return (Interlocked.CompareExchange(ref _closed, fresh, closed) == closed ? fresh : Volatile.Read(ref _closed)!).Task;
    }

    private void Recount()
    {
        _limit = ReadLimit();

        // What was opened and closed up to now is in the count; what comes after it, from other threads, is not lost.
        var opened = Volatile.Read(ref _openedSince);
        var closed = Volatile.Read(ref _closedSince);

        // Out of descriptors even to count them (EMFILE): no room. When they cannot be counted at all (no /proc, a
        // sandbox that refuses it, a libc without getdents64), nothing can be told: room, and EMFILE's back-off remains.
        int? open;
        try
        {
            open = CountOpen();
        }
        catch (EntryPointNotFoundException)
        {
            open = 0;
        }

        _counted = open ?? (int)Math.Min(_limit, int.MaxValue);
        _countedAt = Stopwatch.GetTimestamp();
        Interlocked.Add(ref _openedSince, -opened);
        Interlocked.Add(ref _closedSince, -closed);
    }

    /// <summary>
    /// The entries of <c>/proc/self/fd</c>, read with <c>getdents64</c>: the runtime's directory enumeration would
    /// <c>stat</c> every one of them (they are links), two system calls a descriptor, at every count.
    /// </summary>
    private static int? CountOpen()
    {
        var directory = OpenDirectory("/proc/self/fd", ODirectory | OCloexec);
        if (directory < 0)
        {
            return Marshal.GetLastPInvokeError() is Errno.EMFILE or Errno.ENFILE ? null : 0;
        }

        try
        {
            Span<byte> buffer = stackalloc byte[16 * 1024];
            var entries = 0;
            int read;
            while ((read = (int)GetDirectoryEntries(directory, ref MemoryMarshal.GetReference(buffer), buffer.Length)) > 0)
            {
                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
                for (var offset = 0; offset < read; offset += BinaryPrimitives.ReadUInt16LittleEndian(buffer[(offset + 16)..]))
                {
                    if (buffer[offset + 19] != (byte)'.')
                    {
                        entries++;
                    }
                }
            }

            // The directory's own descriptor is among them.
            return read < 0 ? 0 : entries - 1;
        }
        finally
        {
            _ = CloseDescriptor(directory);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenDirectory(string path, int flags);

    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    private static partial nint GetDirectoryEntries(int fd, ref byte buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseDescriptor(int fd);

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRlimit(int resource, out RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }
}
