using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>The <see cref="NetStreamEngine.Sockets"/> engine: <see cref="Socket"/>'s asynchronous operations.</summary>
internal sealed class SocketsConnectionIo(Socket socket, SocketOperationPool sendOperations) : IConnectionIo
{
    private readonly SocketOperation _receive = new();
    private SocketOperation? _send;
    private List<ArraySegment<byte>>? _segments;

    public ValueTask<IoResult> WaitForDataAsync() => _receive.ReceiveAsync(socket, Memory<byte>.Empty);

    public ValueTask<IoResult> ReceiveAsync(Memory<byte> buffer) => _receive.ReceiveAsync(socket, buffer);

    public ValueTask<IoResult> SendAsync(in ReadOnlySequence<byte> buffer)
    {
        _send = sendOperations.Rent();
        if (buffer.IsSingleSegment)
        {
            return _send.SendAsync(socket, buffer.First);
        }

        // One sendmsg for the whole sequence: the segments go out as an iovec array.
        var segments = _segments ??= new List<ArraySegment<byte>>();
        segments.Clear();
        foreach (var memory in buffer)
        {
            segments.Add(AsSegment(memory));
        }

        return _send.SendAsync(socket, segments);
    }

    private static ArraySegment<byte> AsSegment(ReadOnlyMemory<byte> memory) =>
        MemoryMarshal.TryGetArray(memory, out var segment)
            ? segment
            : new ArraySegment<byte>(memory.ToArray());

    public void SendCompleted()
    {
        // Exchanged, not read: Dispose may race with the end of a send, and only one of them may have the operation.
        if (Interlocked.Exchange(ref _send, null) is { } done)
        {
            sendOperations.Return(done);
        }
    }

    public void Close() => socket.Dispose();

    public void Dispose()
    {
        _receive.Dispose();

        // Still set only if a send never completed: it may be in use, so it is not given back.
        Interlocked.Exchange(ref _send, null)?.Dispose();
    }
}
