using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>The libc calls of the epoll engine, and the layout of the structures they take.</summary>
internal static unsafe partial class EpollNative
{
    public const int EpollCloexec = 0x80000;
    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;

    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;
    public const uint EpollEt = 0x80000000;

    public const int EfdCloexec = 0x80000;
    public const int EfdNonblock = 0x800;

    public const int MsgPeek = 0x2;

    /// <summary><c>FIONBIO</c>: sets or clears <c>O_NONBLOCK</c> in one call.</summary>
    public const nuint Fionbio = 0x5421;

    /// <summary>A peer that reset must not kill the process with SIGPIPE: sends say so per call.</summary>
    public const int MsgNoSignal = 0x4000;

    /// <summary>
    /// <c>struct epoll_event</c> is packed on x86-64 (12 bytes: the 64-bit data right after the 32-bit mask) and
    /// naturally aligned elsewhere (16 bytes). The loop reads events through these two numbers.
    /// </summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MessageHeader
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Vectors;
        public nuint VectorCount;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>Adds <paramref name="fd"/> to <paramref name="epoll"/>, watching <paramref name="events"/>, tagged <paramref name="data"/>.</summary>
    public static int Add(int epoll, int fd, uint events, ulong data)
    {
        var buffer = stackalloc byte[16];
        *(uint*)buffer = events;
        *(ulong*)(buffer + EventDataOffset) = data;
        return EpollCtl(epoll, EpollCtlAdd, fd, buffer);
    }

    public static int Remove(int epoll, int fd)
    {
        // The kernel ignores the event of a removal, but kernels before 2.6.9 wanted one that is not null.
        var buffer = stackalloc byte[16];
        return EpollCtl(epoll, EpollCtlDel, fd, buffer);
    }

    /// <summary>Bytes of the CPU masks passed to <c>sched_[gs]etaffinity</c>: 1024 CPUs, glibc's <c>cpu_set_t</c>.</summary>
    public const int CpuSetBytes = 128;

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    public static partial int GetAffinity(int pid, nuint size, byte* mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    public static partial int SetAffinity(int pid, nuint size, byte* mask);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epoll, int operation, int fd, void* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epoll, void* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Receive(int fd, void* buffer, nint length, int flags);

    /// <summary>A gathered write, as <c>writev</c>, that can say <see cref="MsgNoSignal"/>.</summary>
    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMessage(int fd, MessageHeader* message, int flags);

    /// <summary>Sets <c>O_NONBLOCK</c> with one <c>ioctl(FIONBIO)</c>; throws with the errno if the kernel refuses.</summary>
    public static void SetNonBlocking(int fd, string what, bool nonBlocking = true)
    {
        var on = nonBlocking ? 1 : 0;
        if (Ioctl(fd, Fionbio, &on) != 0)
        {
            throw new IOException($"ioctl(FIONBIO) on {what} failed: {Errno.Name(Marshal.GetLastPInvokeError())}.");
        }
    }

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, int* value);

    /// <summary>A scattered read, as <c>readv</c>.</summary>
    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint ReceiveMessage(int fd, MessageHeader* message, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
