using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// One <c>accept4(2)</c> of NetStream's own, after the runtime's accept failed: its <see cref="SocketError"/> merges
/// errnos (EMFILE and ENFILE, EPERM and EACCES) and drops the number of those it has no name for (ENOMEM, EPROTO), and
/// what to do about a failure depends on which it was.
/// </summary>
internal static partial class KernelAccept
{
    private const int FGetFl = 3;            // F_GETFL
    private const int ONonBlock = 0x800;     // O_NONBLOCK
    private const int SockCloexec = 0x80000; // SOCK_CLOEXEC

    /// <summary>
    /// Accepts once, without waiting, from a listening socket the runtime drives (it makes its descriptor
    /// non-blocking): a connection that was pending, or <see langword="null"/> and the errno (EAGAIN if none was).
    /// Nothing is tried on a blocking descriptor, which would wait: the errno is then <see langword="null"/>.
    /// </summary>
    public static Socket? TryAccept(Socket listener, out int? errno)
    {
        errno = null;
        try
        {
            var handle = listener.SafeHandle;
            if ((GetFlags(handle, FGetFl) & ONonBlock) == 0)
            {
                return null;
            }

            var fd = Accept4(handle, 0, 0, SockCloexec);
            if (fd >= 0)
            {
                return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            }

            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        catch (ObjectDisposedException)
        {
            // Unbound meanwhile: the accept loop finds out.
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int GetFlags(SafeSocketHandle fd, int command);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4(SafeSocketHandle fd, nint address, nint addressLength, int flags);
}
