using System.Buffers;
using System.Runtime.CompilerServices;
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

    /// <summary>
    /// Receives into <paramref name="buffer"/> and, past its end, into a spill area on the stack, in one <c>recvmsg</c>:
    /// a read that fills the buffer exactly is then still a short read (<paramref name="drained"/>: the socket is empty,
    /// no EAGAIN receive needed to learn it), and what spilled is held for the next receives.
    /// </summary>
    [SkipLocalsInit] // the spill area is written by the kernel before it is read: zeroing 8 KiB per receive is waste
    private nint ReceiveWithSpill(Span<byte> buffer, out bool drained, out int errno)
    {
        drained = false;
        using var lease = new DescriptorLease(_handle);
        if (!lease.IsHeld)
        {
            errno = Errno.EBADF;
            return -1;
        }

        var spill = stackalloc byte[SpillSize];
        fixed (byte* bytes = buffer)
        {
            var vectors = stackalloc EpollNative.IoVec[2];
            vectors[0] = new EpollNative.IoVec { Base = bytes, Length = (nuint)buffer.Length };
            vectors[1] = new EpollNative.IoVec { Base = spill, Length = SpillSize };
            var message = new EpollNative.MessageHeader { Vectors = vectors, VectorCount = 2 };
            var received = EpollNative.ReceiveMessage(_fd, &message, 0);
            if (received < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                return received;
            }

            errno = 0;
            drained = received < buffer.Length + SpillSize;
            if (received <= buffer.Length)
            {
                return received;
            }

            var spilled = (int)(received - buffer.Length);
            _held = ArrayPool<byte>.Shared.Rent(spilled);
            new ReadOnlySpan<byte>(spill, spilled).CopyTo(_held);
            _heldStart = 0;
            _heldCount = spilled;
            return buffer.Length;
        }
    }

    /// <summary>Hands out held bytes into <paramref name="buffer"/>; the pool gets the array back once all are out.</summary>
    private int TakeHeld(Span<byte> buffer)
    {
        var count = Math.Min(_heldCount, buffer.Length);
        _held.AsSpan(_heldStart, count).CopyTo(buffer);
        _heldStart += count;
        _heldCount -= count;
        if (_heldCount == 0)
        {
            ArrayPool<byte>.Shared.Return(_held!);
            _held = null;
        }

        return count;
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
