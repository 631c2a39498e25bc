using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>
/// The engine seam: the only part of a connection that knows how bytes move between the socket and memory.
/// The connection's pipes, features, lifetime and close semantics sit above it, identical for every engine.
/// </summary>
/// <remarks>
/// Errors come back as values, never thrown: every connection ends with an aborted or reset operation, and a
/// thrown exception per connection cost more than the rest of its teardown together.
/// </remarks>
internal interface IConnectionIo : IDisposable
{
    /// <summary>Completes when the socket has data to read (or end of stream), without holding a buffer meanwhile.</summary>
    ValueTask<IoResult> WaitForDataAsync();

    /// <summary>Reads into <paramref name="buffer"/>; 0 bytes means the peer sent FIN.</summary>
    ValueTask<IoResult> ReceiveAsync(Memory<byte> buffer);

    /// <summary>Sends every byte of <paramref name="buffer"/>. Call <see cref="SendCompleted"/> once its result is read.</summary>
    ValueTask<IoResult> SendAsync(in ReadOnlySequence<byte> buffer);

    /// <summary>Frees what the last send held (the Sockets engine shares send operations between connections).</summary>
    void SendCompleted();

    /// <summary>
    /// Closes the socket, once: the engine stops watching it first, and an operation still waiting ends as
    /// <see cref="SocketError.OperationAborted"/>. The connection calls it after its FIN or RST is decided (and after a
    /// lingering close); <see cref="IDisposable.Dispose"/>, once both loops ended, frees the rest and never closes the socket.
    /// </summary>
    void Close();
}

/// <summary>
/// An I/O engine: gives each accepted socket its <see cref="IConnectionIo"/> and the scheduler its connection's
/// transport continuations run on (the send loop after the application flushed).
/// </summary>
internal interface IConnectionEngine
{
    /// <summary>Takes over <paramref name="socket"/>'s I/O. Called from the accept loop.</summary>
    IConnectionIo Attach(Socket socket, out PipeScheduler transportScheduler);

    /// <summary>Makes the accept side of the listening socket <paramref name="listener"/>.</summary>
    IConnectionAcceptor CreateAcceptor(Socket listener);

    /// <summary>Frees what the engine keeps for a listener that is disposed (pools), if it keeps anything.</summary>
    void Release();
}

/// <summary>
/// An engine's accept side of one listening socket. Disposed before the listening socket is closed: a pending accept
/// then throws <see cref="ObjectDisposedException"/>.
/// </summary>
internal interface IConnectionAcceptor : IDisposable
{
    /// <summary>
    /// The next connection, as the kernel gave it (blocking, close-on-exec). A failure is thrown: a
    /// <see cref="SocketException"/> (an <see cref="AcceptErrnoException"/> when the engine knows the errno itself),
    /// <see cref="ObjectDisposedException"/> once disposed, <see cref="OperationCanceledException"/>.
    /// </summary>
    ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken);
}

/// <summary>The outcome of one socket operation: bytes moved, or the error.</summary>
internal readonly record struct IoResult(int Bytes, SocketError Error)
{
    public bool Succeeded => Error == SocketError.Success;
}
