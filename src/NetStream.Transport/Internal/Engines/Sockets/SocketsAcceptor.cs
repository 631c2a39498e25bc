using System.Net.Sockets;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>The <see cref="NetStreamEngine.Sockets"/> engine's accept: the runtime's <see cref="Socket.AcceptAsync(CancellationToken)"/>.</summary>
internal sealed class SocketsAcceptor(Socket listener) : IConnectionAcceptor
{
    public ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken) => listener.AcceptAsync(cancellationToken);

    public void Dispose()
    {
        // The listener closes its socket, which ends a pending accept.
    }
}
