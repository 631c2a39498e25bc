using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>An accept that failed with <see cref="Errno"/>, known exactly (the runtime's <see cref="SocketError"/> merges some).</summary>
internal sealed class AcceptErrnoException(int errno) : SocketException((int)ToSocketError(errno))
{
    public int Errno { get; } = errno;

    public override string Message => $"accept4 failed: {Internal.Errno.Name(Errno)}.";

    private static SocketError ToSocketError(int errno) => errno switch
    {
        Internal.Errno.EMFILE or Internal.Errno.ENFILE => SocketError.TooManyOpenSockets,
        Internal.Errno.ENOBUFS or Internal.Errno.ENOMEM => SocketError.NoBufferSpaceAvailable,
        Internal.Errno.ECONNABORTED => SocketError.ConnectionAborted,
        Internal.Errno.EINTR => SocketError.Interrupted,
        _ => SocketError.SocketError,
    };
}
