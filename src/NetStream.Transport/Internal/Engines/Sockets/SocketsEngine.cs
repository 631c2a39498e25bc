using System.IO.Pipelines;
using System.Net.Sockets;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>
/// The <see cref="NetStreamEngine.Sockets"/> engine of one listener: the runtime's socket engine does the waiting,
/// and the listener's I/O queues batch the transport's continuations onto the thread pool.
/// </summary>
internal sealed class SocketsEngine : IConnectionEngine
{
    private readonly SocketOperationPool _sendOperations = new();
    private readonly PipeScheduler[] _schedulers;
    private int _next;

    public SocketsEngine(NetStreamTransportOptions options)
    {
        _schedulers = options.IOQueueCount > 0 && !options.UnsafePreferInlineScheduling
            ? Enumerable.Range(0, options.IOQueueCount).Select(_ => (PipeScheduler)new IOQueue()).ToArray()
            : [PipeScheduler.Inline];
    }

    public IConnectionIo Attach(Socket socket, out PipeScheduler transportScheduler)
    {
        // Round-robin; no lock, the accept loop is the only caller.
        transportScheduler = _schedulers[(uint)_next++ % (uint)_schedulers.Length];
        return new SocketsConnectionIo(socket, _sendOperations);
    }

    public IConnectionAcceptor CreateAcceptor(Socket listener) => new SocketsAcceptor(listener);

    public void Release() => _sendOperations.Clear();
}
