using System.Net.Sockets;
using System.Runtime.InteropServices;
using NetStream.Transport.Internal.Engines.Epoll;

namespace NetStream.Transport.Internal;

/// <summary>
/// Descriptors sent over a Unix socket with <c>sendmsg(2)</c> and an <c>SCM_RIGHTS</c> control message: the receiver
/// gets its own descriptors for the same open files (here, listening sockets). At most 253 per message, the kernel's
/// limit (<c>SCM_MAX_FD</c>).
/// </summary>
internal static unsafe class ScmRights
{
    public const int MaxDescriptors = 253;

    private const int SolSocket = 1;
    private const int ScmRightsType = 1;

    /// <summary>The <c>cmsghdr</c> before the descriptors: <c>cmsg_len</c> (a <c>size_t</c>), <c>cmsg_level</c>, <c>cmsg_type</c>.</summary>
    private static readonly int HeaderLength = sizeof(nuint) + 2 * sizeof(int);

    /// <summary>Sends <paramref name="data"/> (at least one byte) with <paramref name="descriptors"/> attached.</summary>
    /// <exception cref="IOException">The send failed (the errno's name).</exception>
    public static void Send(Socket socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> descriptors)
    {
        if (data.IsEmpty || descriptors.Length > MaxDescriptors)
        {
            throw new ArgumentException($"An SCM_RIGHTS message carries 1 or more bytes and at most {MaxDescriptors} descriptors.");
        }

        var payload = descriptors.Length * sizeof(int);
        var controlLength = descriptors.IsEmpty ? 0 : Align(HeaderLength + payload);
        var control = stackalloc byte[Math.Max(controlLength, 1)];
        new Span<byte>(control, controlLength).Clear();
        if (controlLength > 0)
        {
            *(nuint*)control = (nuint)(HeaderLength + payload);
            *(int*)(control + sizeof(nuint)) = SolSocket;
            *(int*)(control + sizeof(nuint) + sizeof(int)) = ScmRightsType;
            descriptors.CopyTo(new Span<int>(control + HeaderLength, descriptors.Length));
        }

        fixed (byte* bytes = data)
        {
            var vector = new EpollNative.IoVec { Base = bytes, Length = (nuint)data.Length };
            var message = new EpollNative.MessageHeader
            {
                Vectors = &vector,
                VectorCount = 1,
                Control = controlLength > 0 ? control : null,
                ControlLength = (nuint)controlLength,
            };
            using var lease = new DescriptorLease(socket.SafeHandle);
            ObjectDisposedException.ThrowIf(!lease.IsHeld, socket);

            while (EpollNative.SendMessage((int)socket.SafeHandle.DangerousGetHandle(), &message, EpollNative.MsgNoSignal) < 0)
            {
                // A signal (the runtime's, a child's) interrupts a blocking call: it is made again.
                if (Marshal.GetLastPInvokeError() is var errno && errno != Errno.EINTR)
                {
                    throw Failed("sendmsg", errno);
                }
            }
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="data"/> with the descriptors attached to it, close-on-exec unless
    /// <paramref name="inheritable"/>. Blocks as the socket does (its receive timeout included).
    /// </summary>
    /// <returns>The bytes received (0: the peer closed) and the descriptors, now this process's to close.</returns>
    /// <exception cref="IOException">The receive failed or timed out, or the kernel dropped descriptors that did not fit.</exception>
    public static (int Length, int[] Descriptors) Receive(Socket socket, Span<byte> data, bool inheritable = false)
    {
        const int MsgCmsgCloexec = 0x40000000;
        const int MsgCtrunc = 0x8;
        var controlLength = Align(HeaderLength + MaxDescriptors * sizeof(int));
        var control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();
        nint received;
        EpollNative.MessageHeader message;
        fixed (byte* bytes = data)
        {
            var vector = new EpollNative.IoVec { Base = bytes, Length = (nuint)data.Length };
            message = new EpollNative.MessageHeader { Vectors = &vector, VectorCount = 1, Control = control, ControlLength = (nuint)controlLength };
            using var lease = new DescriptorLease(socket.SafeHandle);
            ObjectDisposedException.ThrowIf(!lease.IsHeld, socket);

            // Blocking, whatever the runtime made of the socket (its async operations leave it non-blocking): the
            // socket's receive timeout (SO_RCVTIMEO) bounds the wait.
            EpollNative.SetNonBlocking((int)socket.SafeHandle.DangerousGetHandle(), "a handoff socket", nonBlocking: false);
            while ((received = EpollNative.ReceiveMessage((int)socket.SafeHandle.DangerousGetHandle(), &message, inheritable ? 0 : MsgCmsgCloexec)) < 0)
            {
                // Interrupted by a signal: made again (the receive timeout starts over).
                if (Marshal.GetLastPInvokeError() is var errno && errno != Errno.EINTR)
                {
                    throw Failed("recvmsg", errno);
                }
            }
        }

        var descriptors = new List<int>();
        for (var offset = 0; offset + HeaderLength <= (int)message.ControlLength;)
        {
            var length = (int)*(nuint*)(control + offset);
            if (length < HeaderLength)
            {
                break;
            }

            if (*(int*)(control + offset + sizeof(nuint)) == SolSocket && *(int*)(control + offset + sizeof(nuint) + sizeof(int)) == ScmRightsType)
            {
                descriptors.AddRange(new ReadOnlySpan<int>(control + offset + HeaderLength, (length - HeaderLength) / sizeof(int)));
            }

            offset += Align(length);
        }

        if ((message.Flags & MsgCtrunc) != 0)
        {
            foreach (var descriptor in descriptors)
            {
                Descriptor.Close((ulong)descriptor);
            }

            throw new IOException("recvmsg: more descriptors came than fit (MSG_CTRUNC), and the kernel closed the rest");
        }

        return ((int)received, [.. descriptors]);
    }

    /// <summary>A failed call, named with its errno (EAGAIN: the socket's timeout passed).</summary>
    private static IOException Failed(string call, int errno) =>
        new(errno == Errno.EAGAIN ? $"{call} timed out" : $"{call} failed: {Errno.Name(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})");

    private static int Align(int length) => (length + sizeof(nuint) - 1) & ~(sizeof(nuint) - 1);
}
