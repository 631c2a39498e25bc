using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>What a TCP socket has sent that its peer has not acknowledged yet (the FIN included).</summary>
internal static partial class SendQueue
{
    private const nuint SiocOutq = 0x5411; // SIOCOUTQ (TIOCOUTQ): unsent plus unacknowledged bytes

    /// <summary>The bytes in flight or waiting to be sent; 0 when the kernel cannot say (the connection is gone).</summary>
    public static int Unacknowledged(Socket socket)
    {
        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return Ioctl((int)handle.DangerousGetHandle(), SiocOutq, out var bytes) == 0 ? bytes : 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, out int value);
}
