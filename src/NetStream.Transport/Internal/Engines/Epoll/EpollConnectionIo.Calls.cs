using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>The system calls of one connection: each holds the socket's handle (<see cref="DescriptorLease"/>) while it runs.</summary>
internal sealed unsafe partial class EpollConnectionIo
{
    /// <summary>Whether a byte is there to read (or the stream ended), without taking it; false with the errno if not.</summary>
    private bool Peek(out int errno)
    {
        byte peeked;
        var found = Receive(new Span<byte>(&peeked, 1), out errno, EpollNative.MsgPeek);
        return found >= 0;
    }

    private nint Receive(Span<byte> buffer, out int errno, int flags = 0)
    {
        using var lease = new DescriptorLease(_handle);
        if (!lease.IsHeld)
        {
            errno = Errno.EBADF;
            return -1;
        }

        fixed (byte* bytes = buffer)
        {
            var received = EpollNative.Receive(_fd, bytes, buffer.Length, flags);
            errno = received < 0 ? Marshal.GetLastPInvokeError() : 0;
            return received;
        }
    }

    /// <summary>One <c>sendmsg</c> of up to <see cref="MaxVectors"/> segments of what is left to send.</summary>
    private nint SendGathered(out long offered, out int errno)
    {
        var pins = t_pins ??= new MemoryHandle[MaxVectors];
        var vectors = stackalloc EpollNative.IoVec[MaxVectors];
        var count = 0;
        offered = 0;
        var skip = _sent;
        try
        {
            foreach (var memory in _sendBuffer)
            {
                if (skip >= memory.Length)
                {
                    skip -= memory.Length;
                    continue;
                }

                var rest = memory[(int)skip..];
                skip = 0;
                pins[count] = rest.Pin();
                vectors[count] = new EpollNative.IoVec { Base = pins[count].Pointer, Length = (nuint)rest.Length };
                offered += rest.Length;
                if (++count == MaxVectors)
                {
                    break;
                }
            }

            using var lease = new DescriptorLease(_handle);
            if (!lease.IsHeld)
            {
                errno = Errno.EBADF;
                return -1;
            }

            var message = new EpollNative.MessageHeader { Vectors = vectors, VectorCount = (nuint)count };
            var sent = EpollNative.SendMessage(_fd, &message, EpollNative.MsgNoSignal);
            errno = sent < 0 ? Marshal.GetLastPInvokeError() : 0;
            return sent;
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                pins[i].Dispose();
            }
        }
    }

    private static SocketError ToSocketError(int errno) => errno switch
    {
        Errno.ECONNRESET => SocketError.ConnectionReset,
        Errno.EPIPE => SocketError.Shutdown,
        Errno.ECONNABORTED => SocketError.ConnectionAborted,
        Errno.ETIMEDOUT => SocketError.TimedOut,
        Errno.EHOSTUNREACH => SocketError.HostUnreachable,
        Errno.ENETUNREACH => SocketError.NetworkUnreachable,
        Errno.EBADF => SocketError.OperationAborted,
        _ => SocketError.SocketError,
    };
}
