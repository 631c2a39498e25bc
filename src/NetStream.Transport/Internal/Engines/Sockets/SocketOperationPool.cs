using System.Collections.Concurrent;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>
/// Send operations shared by the connections of a listener. A connection needs one only while it sends, so an idle
/// connection holds none and a short-lived one allocates none.
/// </summary>
internal sealed class SocketOperationPool
{
    // Enough for every connection sending at the same moment on a busy server; beyond it operations are freed.
    private const int MaxPooled = 1024;

    private readonly ConcurrentQueue<SocketOperation> _operations = new();
    private int _count;

    public SocketOperation Rent()
    {
        if (_operations.TryDequeue(out var operation))
        {
            Interlocked.Decrement(ref _count);
            return operation;
        }

        return new SocketOperation();
    }

    /// <summary>Frees the pooled operations (they keep a reference to the last socket they served).</summary>
    public void Clear()
    {
        while (_operations.TryDequeue(out var operation))
        {
            Interlocked.Decrement(ref _count);
            operation.Dispose();
        }
    }

    /// <summary>Takes back an operation that has completed and whose result was read.</summary>
    public void Return(SocketOperation operation)
    {
        if (Interlocked.Increment(ref _count) <= MaxPooled)
        {
            operation.ReleaseBuffers();
            _operations.Enqueue(operation);
            return;
        }

        Interlocked.Decrement(ref _count);
        operation.Dispose();
    }
}
