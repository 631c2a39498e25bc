using System.Net.Sockets;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>The <see cref="NetStreamEngine.Sockets"/> engine's accept: the runtime's <see cref="Socket.AcceptAsync(CancellationToken)"/>.</summary>
internal sealed class SocketsAcceptor(Socket listener) : IConnectionAcceptor
{
    private readonly CancellationTokenSource _closing = new();

    // Kestrel and the hosted server accept without a token: the acceptor's own serves, with no allocation.
    public ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken) =>
        cancellationToken.CanBeCanceled ? AcceptLinkedAsync(cancellationToken) : listener.AcceptAsync(_closing.Token);

    private async ValueTask<Socket> AcceptLinkedAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        return await listener.AcceptAsync(linked.Token).ConfigureAwait(false);
    }

    public void Dispose()
    {
        // The pending accept is cancelled before the listener closes its socket: closing it with an operation pending
        // would close it abortively, setting SO_LINGER {on, 0} on the socket, which every connection it accepts from
        // then on inherits, in whichever process still holds it (a handoff's successor, systemd).
        // Not disposed: the cancelled operation may still unregister from its token.
        _closing.Cancel();
    }
}
