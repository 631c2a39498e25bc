using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>
/// One reusable, awaitable socket operation: a <see cref="SocketAsyncEventArgs"/> that is its own
/// <see cref="IValueTaskSource{TResult}"/>, so steady-state receives and sends allocate nothing, and a failed one
/// throws nothing (its error is in the result). At most one operation is outstanding at a time, which is how each
/// connection loop uses it.
/// </summary>
internal sealed class SocketOperation : SocketAsyncEventArgs, IValueTaskSource<IoResult>
{
    private static readonly Action<object?> s_completed = _ => { };

    private Action<object?>? _continuation;
    private object? _continuationState;

    // Changes with every operation: a pooled operation serves many connections, and a stale await must fail
    // loudly rather than read another connection's result.
    private short _version;

    public SocketOperation()
        : base(unsafeSuppressExecutionContextFlow: true)
    {
    }

    public ValueTask<IoResult> ReceiveAsync(Socket socket, Memory<byte> buffer)
    {
        SetBuffer(buffer);
        var version = ++_version;
        return socket.ReceiveAsync(this) ? new ValueTask<IoResult>(this, version) : CompletedSynchronously();
    }

    public ValueTask<IoResult> SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        if (BufferList is not null)
        {
            BufferList = null;
        }

        // The socket only reads from a send buffer; SocketAsyncEventArgs has a single Memory<byte> slot for both.
        SetBuffer(System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer));
        var version = ++_version;
        return socket.SendAsync(this) ? new ValueTask<IoResult>(this, version) : CompletedSynchronously();
    }

    public ValueTask<IoResult> SendAsync(Socket socket, IList<ArraySegment<byte>> buffers)
    {
        if (MemoryBuffer.Length != 0)
        {
            SetBuffer(Memory<byte>.Empty);
        }

        BufferList = buffers;
        var version = ++_version;
        return socket.SendAsync(this) ? new ValueTask<IoResult>(this, version) : CompletedSynchronously();
    }

    /// <summary>
    /// Drops the last operation's segment list, so an operation waiting in a pool keeps no connection's list alive.
    /// A single buffer is left in place: it is a block of the memory pool, and the next send replaces it anyway.
    /// </summary>
    public void ReleaseBuffers()
    {
        if (BufferList is not null)
        {
            BufferList = null;
        }
    }

    private ValueTask<IoResult> CompletedSynchronously() => new(Result);

    private IoResult Result => new(BytesTransferred, SocketError);

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        // On Linux the runtime already completes socket operations on a thread-pool thread,
        // so the continuation runs here rather than paying for another dispatch.
        var continuation = Interlocked.Exchange(ref _continuation, s_completed);
        if (continuation is not null && !ReferenceEquals(continuation, s_completed))
        {
            continuation(_continuationState);
        }
    }

    public IoResult GetResult(short token)
    {
        CheckVersion(token);
        _continuation = null;
        _continuationState = null;
        return Result;
    }

    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckVersion(token);
        if (!ReferenceEquals(Volatile.Read(ref _continuation), s_completed))
        {
            return ValueTaskSourceStatus.Pending;
        }

        return ValueTaskSourceStatus.Succeeded;
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckVersion(token);
        _continuationState = state;
        var previous = Interlocked.CompareExchange(ref _continuation, continuation, null);
        if (ReferenceEquals(previous, s_completed))
        {
            // Completed between the pending return and this registration: don't run it on the caller's stack.
            ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
        }
    }

    private void CheckVersion(short token)
    {
        if (token != _version)
        {
            throw new InvalidOperationException("A socket operation was awaited after it was reused: await each operation once.");
        }
    }
}
