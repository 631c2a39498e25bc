using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>What NetStream does to an inherited descriptor that is its own (systemd's, the hosted server's <c>fd:N</c>).</summary>
internal static partial class Descriptor
{
    private const int FSetFd = 2;     // F_SETFD
    private const int FdCloexec = 1;  // FD_CLOEXEC

    /// <summary>
    /// Marks it close-on-exec, as <c>sd_listen_fds</c> does: a process the application starts must not inherit the
    /// listening socket and keep it open after the server closed it.
    /// </summary>
    public static void SetCloseOnExec(Socket socket)
    {
        if (Fcntl((int)socket.SafeHandle.DangerousGetHandle(), FSetFd, FdCloexec) != 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Closes it, once the socket that wrapped it without owning it is disposed.</summary>
    public static void Close(ulong descriptor) => _ = CloseDescriptor((int)descriptor);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseDescriptor(int fd);
}
