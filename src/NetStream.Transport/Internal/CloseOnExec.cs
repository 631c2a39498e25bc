using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// Marks an inherited descriptor close-on-exec, as <c>sd_listen_fds</c> does: a process the application starts must
/// not inherit the listening socket and keep it open after the server closed it.
/// </summary>
internal static partial class CloseOnExec
{
    private const int FSetFd = 2;             // F_SETFD
    private const int FdCloexec = 1;          // FD_CLOEXEC
    private const int FDupFdCloexec = 1030;   // F_DUPFD_CLOEXEC

    public static void Set(Socket socket)
    {
        if (SetFd((int)socket.SafeHandle.DangerousGetHandle(), FSetFd, FdCloexec) != 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>A close-on-exec duplicate of <paramref name="descriptor"/>, for a socket its caller keeps.</summary>
    public static IntPtr Duplicate(ulong descriptor)
    {
        var duplicate = SetFd((int)descriptor, FDupFdCloexec, 0);
        return duplicate >= 0 ? duplicate : throw new SocketException(Marshal.GetLastPInvokeError());
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int SetFd(int fd, int command, int argument);
}
