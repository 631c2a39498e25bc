using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// The <see cref="NetStreamEngine.Epoll"/> engine's accept: <c>accept4</c> on the non-blocking listening socket, and,
/// when its queue is empty, a wait for the next edge from the loop that watches it. The accept loop pulls, so one
/// readiness is drained until EAGAIN by as many accepts as the caller makes.
/// </summary>
/// <remarks>
/// A wait ends on the thread pool, never inline on the loop: what the caller does next (the <c>new_connection</c> hook,
/// Kestrel's dispatch) is application code, and must not hold up the connections of that loop.
/// </remarks>
internal sealed partial class EpollAcceptor : IConnectionAcceptor, IEpollHandler, IValueTaskSource<int>
{
    private const int SockCloexec = 0x80000;
    private const int Edge = 0;
    private const int Closed = 1;
    private const int Cancelled = 2;

    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private ManualResetValueTaskSourceCore<int> _wait = new() { RunContinuationsAsynchronously = true };

    // Guarded by the lock on this, as a connection's: edges counted, the count when the queue was last found empty.
    // Starts "not empty": the first accept is tried at once, as the runtime's is (a failing accept4 is seen and
    // survived before any peer comes), and only EAGAIN makes it wait for an edge.
    private int _edges = 1;
    private int _emptyAt;
    private bool _waiting;
    private bool _closed;
    private int _accepting;   // accept4 calls past the closed check, and not yet returned

    public EpollAcceptor(EpollLoop loop, Socket listener)
    {
        Loop = loop;
        _handle = listener.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
        EpollNative.SetNonBlocking(_fd, "the listening socket");

        loop.Register(this, _fd, EpollNative.EpollIn);
    }

    public EpollLoop Loop { get; }

    public ulong Tag { get; set; }

    public async ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            int edges;
            var mustWait = false;
            var wait = default(ValueTask<int>);
            lock (this)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                edges = _edges;
                if (edges == _emptyAt)
                {
                    mustWait = true;
                    _wait.Reset();
                    _waiting = true;
                    wait = new ValueTask<int>(this, _wait.Version);
                }
            }

            if (mustWait)
            {
                await using var cancelling = cancellationToken.UnsafeRegister(static state => ((EpollAcceptor)state!).End(Cancelled), this).ConfigureAwait(false);
                switch (await wait.ConfigureAwait(false))
                {
                    case Closed:
                        throw new ObjectDisposedException(nameof(EpollAcceptor));
                    case Cancelled:
                        throw new OperationCanceledException(cancellationToken);
                }

                continue;
            }

            var fd = Accept(out var errno);
            if (fd >= 0)
            {
                var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                if (socket.RemoteEndPoint is null && socket.AddressFamily != AddressFamily.Unix)
                {
                    // Reset before it was taken (a health check's connect-and-reset): the runtime reads the peer from
                    // the descriptor, which no longer has one. Nothing is left to serve, nor to say who it was: the
                    // error other kernels give for it, which the accept-error policy retries at once and counts.
                    socket.Dispose();
                    throw new AcceptErrnoException(Errno.ECONNABORTED);
                }

                return socket;
            }

            if (errno != Errno.EAGAIN)
            {
                throw new AcceptErrnoException(errno);
            }

            lock (this)
            {
                _emptyAt = edges;
            }
        }
    }

    public void OnReadiness(uint events)
    {
        lock (this)
        {
            if (_closed)
            {
                return;
            }

            _edges++;
        }

        End(Edge);
    }

    /// <summary>Leaves the loop (before the listener closes its socket) and ends a pending accept.</summary>
    public void Dispose()
    {
        lock (this)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
        }

        Loop.Unregister(this, _fd);
        End(Closed);

        // An accept4 already past the check holds the handle: the listener must not close the socket under it. The
        // runtime would unblock that call by disconnecting the socket (connect AF_UNSPEC), which stops it listening
        // for every process that shares it (a handoff's successor, systemd's store). accept4 does not block: a spin.
        Interlocked.MemoryBarrier(); // _closed is seen by an accept that starts now, or it is counted here
        var spin = default(SpinWait);
        while (Volatile.Read(ref _accepting) != 0)
        {
            spin.SpinOnce();
        }
    }

    private void End(int outcome)
    {
        lock (this)
        {
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
        }

        _wait.SetResult(outcome);
    }

    private int Accept(out int errno)
    {
        Interlocked.Increment(ref _accepting);
        try
        {
            return AcceptOnce(out errno);
        }
        finally
        {
            Interlocked.Decrement(ref _accepting);
        }
    }

    private int AcceptOnce(out int errno)
    {
        if (Volatile.Read(ref _closed))
        {
            errno = Errno.EBADF;
            return -1;
        }

        using var lease = new DescriptorLease(_handle);
        if (!lease.IsHeld)
        {
            errno = Errno.EBADF;
            return -1;
        }

        // Blocking, as the runtime's accept makes it: the engine makes a connection's socket non-blocking when it
        // takes it over, and acceptfd() hands the descriptor over as the kernel gave it.
        var fd = Accept4(_fd, 0, 0, SockCloexec);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd;
    }

    int IValueTaskSource<int>.GetResult(short token) => _wait.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wait.OnCompleted(continuation, state, token, flags);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4(int fd, nint address, nint addressLength, int flags);
}
