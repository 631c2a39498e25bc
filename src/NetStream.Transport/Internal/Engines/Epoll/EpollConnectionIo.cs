using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// The <see cref="NetStreamEngine.Epoll"/> engine's side of one connection: non-blocking <c>recv</c> and gathered
/// sends on the socket's descriptor, and edge-triggered readiness from the loop that owns it.
/// </summary>
/// <remarks>
/// Readiness is counted, not flagged: the loop counts the edges it sees per direction, and an operation that finds
/// the socket empty (or full) remembers the count it saw before trying. It waits only while no edge came since,
/// so an edge that arrives while an operation runs is never lost. A short read empties a stream socket's queue, so it
/// counts as empty without the <c>recv</c> that would return EAGAIN; after the peer's FIN (EPOLLRDHUP) it does not,
/// since no further edge would come to report the end of the stream.
/// </remarks>
internal sealed unsafe partial class EpollConnectionIo : IConnectionIo, IEpollHandler
{
    /// <summary>
    /// The stack area a receive reads into past the caller's buffer: a message that fills the buffer exactly proves the
    /// socket empty in the same call, and a larger burst takes fewer calls.
    /// </summary>
    private const int SpillSize = 8192;

    /// <summary>Segments per gathered send; more go out in the next one, at once unless the socket is full.</summary>
    private const int MaxVectors = 64;

    private static readonly IoResult Aborted = new(0, SocketError.OperationAborted);

    /// <summary>The pins of one gathered send, per thread: a send pins, calls and unpins on one thread.</summary>
    [ThreadStatic]
    private static MemoryHandle[]? t_pins;

    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private readonly EpollOperation _receive = new();
    private readonly EpollOperation _send = new();

    // Guarded by the lock on this: the loop's edges against the operations' waits. Reading starts "empty": adding
    // the socket to epoll reports the data that came before, as an edge; writing starts "not full".
    private int _readEdges;
    private int _readEmptyAt;
    private int _writeEdges = 1;
    private int _writeFullAt;
    private bool _readEnded;
    private bool _closed;
    private bool _receiveWaiting;
    private bool _receiveWaitsForDataOnly;
    private bool _sendWaiting;

    private Memory<byte> _receiveBuffer;

    // Bytes a receive read past its buffer (see ReceiveWithSpill), handed out by the next receives without a system
    // call. Touched by the receive path only, which runs one at a time.
    private byte[]? _held;
    private int _heldStart;
    private int _heldCount;
    private ReadOnlySequence<byte> _sendBuffer;
    private long _sent;

    public EpollConnectionIo(EpollLoop loop, Socket socket)
    {
        Loop = loop;
        _socket = socket;

        // The runtime's own operations are never started on this socket, so its engine never registers it. Non-blocking
        // through ioctl, not Socket.Blocking: that would make the runtime's per-socket context (152 bytes) for nothing.
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
        EpollNative.SetNonBlocking(_fd, "an accepted socket");

        loop.Register(this, _fd);
    }

    public EpollLoop Loop { get; }

    public ulong Tag { get; set; }

    public ValueTask<IoResult> WaitForDataAsync()
    {
        if (_heldCount > 0)
        {
            return default;
        }

        while (true)
        {
            int edges;
            lock (this)
            {
                if (_closed)
                {
                    return new ValueTask<IoResult>(Aborted);
                }

                edges = _readEdges;
                if (edges == _readEmptyAt)
                {
                    _receiveWaiting = true;
                    _receiveWaitsForDataOnly = true;
                    _receive.Start();
                    return _receive.Pending;
                }

                if (_readEnded)
                {
                    // The end of the stream (or an error) is there for the receive to report.
                    return default;
                }
            }

            // Not known to be empty (the last receive filled its buffer): a peek without a buffer settles it, where a
            // receive would hold its buffer for as long as the connection then stays idle.
            if (Peek(out var errno) || errno != Errno.EAGAIN)
            {
                return default;
            }

            SawEmpty(ref _readEmptyAt, edges, unlessEnded: false);
        }
    }

    public ValueTask<IoResult> ReceiveAsync(Memory<byte> buffer) =>
        TryReceive(buffer, retry: false, out var result) ? new ValueTask<IoResult>(result) : _receive.Pending;

    public ValueTask<IoResult> SendAsync(in ReadOnlySequence<byte> buffer)
    {
        _sendBuffer = buffer;
        _sent = 0;
        if (TrySend(retry: false, out var result))
        {
            _sendBuffer = default;
            return new ValueTask<IoResult>(result);
        }

        return _send.Pending;
    }

    public void SendCompleted()
    {
    }

    public void OnReadiness(uint events)
    {
        bool receive = false, waitOnly = false, send = false;
        lock (this)
        {
            if (_closed)
            {
                return;
            }

            if ((events & (EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _readEnded = true;
            }

            if ((events & (EpollNative.EpollIn | EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _readEdges++;
                (receive, waitOnly, _receiveWaiting) = (_receiveWaiting, _receiveWaitsForDataOnly, false);
            }

            if ((events & (EpollNative.EpollOut | EpollNative.EpollHup | EpollNative.EpollErr)) != 0)
            {
                _writeEdges++;
                (send, _sendWaiting) = (_sendWaiting, false);
            }
        }

        if (receive)
        {
            if (waitOnly)
            {
                _receive.Complete(default);
            }
            else if (TryReceive(_receiveBuffer, retry: true, out var received))
            {
                _receiveBuffer = default;
                _receive.Complete(received);
            }
        }

        if (send && TrySend(retry: true, out var sent))
        {
            _sendBuffer = default;
            _send.Complete(sent);
        }
    }

    /// <summary>Leaves the loop, ends the operations still waiting as aborted, and closes the socket. Once.</summary>
    public void Close()
    {
        bool receive, send;
        lock (this)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            (receive, _receiveWaiting) = (_receiveWaiting, false);
            (send, _sendWaiting) = (_sendWaiting, false);
        }

        // Out of epoll before the descriptor is closed: its number may be reused at once.
        Loop.Unregister(this, _fd);
        if (receive)
        {
            _receive.Complete(Aborted);
        }

        if (send)
        {
            _send.Complete(Aborted);
        }

        _socket.Dispose();
    }

    public void Dispose()
    {
        // The socket is the connection's to close (Close), possibly after a lingering close that outlives the I/O.
        // Both loops have ended: nothing reads the held bytes any more.
        if (_held is { } held)
        {
            _held = null;
            _heldCount = 0;
            ArrayPool<byte>.Shared.Return(held);
        }
    }

    /// <summary>
    /// Receives into <paramref name="buffer"/>, or, if the socket is empty, starts waiting for its next edge and
    /// returns false. <paramref name="retry"/>: the loop runs a wait that was started already.
    /// </summary>
    private bool TryReceive(Memory<byte> buffer, bool retry, out IoResult result)
    {
        while (true)
        {
            int edges;
            lock (this)
            {
                if (_closed)
                {
                    result = Aborted;
                    return true;
                }

                edges = _readEdges;
                if (_heldCount == 0 && edges == _readEmptyAt)
                {
                    if (!retry)
                    {
                        _receive.Start();
                    }

                    _receiveBuffer = buffer;
                    _receiveWaitsForDataOnly = false;
                    _receiveWaiting = true;
                    result = default;
                    return false;
                }
            }

            if (_heldCount > 0)
            {
                result = new IoResult(TakeHeld(buffer.Span), SocketError.Success);
                return true;
            }

            var received = ReceiveWithSpill(buffer.Span, out var drained, out var errno);
            if (received >= 0)
            {
                if (received > 0 && drained)
                {
                    SawEmpty(ref _readEmptyAt, edges, unlessEnded: true);
                }

                result = new IoResult((int)received, SocketError.Success);
                return true;
            }

            if (errno != Errno.EAGAIN)
            {
                result = new IoResult(0, ToSocketError(errno));
                return true;
            }

            SawEmpty(ref _readEmptyAt, edges, unlessEnded: false);
        }
    }

    /// <summary>Sends the rest of <see cref="_sendBuffer"/>, or starts waiting for room and returns false.</summary>
    private bool TrySend(bool retry, out IoResult result)
    {
        while (true)
        {
            int edges;
            lock (this)
            {
                if (_closed)
                {
                    result = Aborted;
                    return true;
                }

                edges = _writeEdges;
                if (edges == _writeFullAt)
                {
                    if (!retry)
                    {
                        _send.Start();
                    }

                    _sendWaiting = true;
                    result = default;
                    return false;
                }
            }

            var sent = SendGathered(out var offered, out var errno);
            if (sent >= 0)
            {
                _sent += sent;
                if (_sent == _sendBuffer.Length)
                {
                    result = new IoResult((int)Math.Min(_sent, int.MaxValue), SocketError.Success);
                    return true;
                }

                if (sent < offered)
                {
                    // The socket's buffer took less than it was given: it is full until the next edge.
                    SawEmpty(ref _writeFullAt, edges, unlessEnded: false);
                }

                continue;
            }

            if (errno != Errno.EAGAIN)
            {
                result = new IoResult(0, ToSocketError(errno));
                return true;
            }

            SawEmpty(ref _writeFullAt, edges, unlessEnded: false);
        }
    }

    private void SawEmpty(ref int at, int edges, bool unlessEnded)
    {
        lock (this)
        {
            if (!unlessEnded || !_readEnded)
            {
                at = edges;
            }
        }
    }
}
