using System.Buffers;

namespace NetStream.Transport.Internal;

/// <summary>
/// The engine seam: the only part of a connection that knows how bytes move between the socket and memory.
/// The connection's pipes, features, lifetime and close semantics sit above it, identical for every engine.
/// </summary>
internal interface IConnectionIo : IDisposable
{
    /// <summary>Completes when the socket has data to read (or end of stream), without holding a buffer meanwhile.</summary>
    ValueTask<int> WaitForDataAsync();

    /// <summary>Reads into <paramref name="buffer"/>; 0 means the peer sent FIN.</summary>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer);

    /// <summary>Sends every byte of <paramref name="buffer"/>.</summary>
    ValueTask<int> SendAsync(in ReadOnlySequence<byte> buffer);
}
