using System.Net.Sockets;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>The <see cref="NetStreamEngine.Sockets"/> engine's accept: the runtime's <see cref="Socket.AcceptAsync(CancellationToken)"/>.</summary>
internal sealed class SocketsAcceptor(Socket listener) : IConnectionAcceptor
{
    // How long Dispose waits for a cancelled accept to return: it is at most inside one accept4 call.
    private static readonly TimeSpan s_drainLimit = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _pending; // accepts handed to the runtime and not yet returned

    public async ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken)
    {
        // Counted before the runtime is called, and Dispose cancels before it reads the count: an accept that starts
        // after Dispose looked finds the token cancelled, and the runtime returns without a system call.
        Interlocked.Increment(ref _pending);
        try
        {
            if (!cancellationToken.CanBeCanceled)
            {
                // Kestrel and the hosted server accept without a token: the acceptor's own serves.
                return await listener.AcceptAsync(_closing.Token).ConfigureAwait(false);
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
            return await listener.AcceptAsync(linked.Token).ConfigureAwait(false);
        }
        finally
        {
            if (Interlocked.Decrement(ref _pending) == 0 && _closing.IsCancellationRequested)
            {
                _drained.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Cancels the pending accept and waits until the runtime has let go of it; only then may the listener close its
    /// socket. Closing it with an operation pending would close it abortively (<c>SO_LINGER {on, 0}</c>, which every
    /// connection it accepts from then on inherits), and closing it while the runtime is inside <c>accept4</c> makes the
    /// runtime unblock that call by disconnecting the socket, which stops it listening. Either would reach every process
    /// that still holds the socket (a handoff's successor, systemd's store).
    /// </summary>
    public void Dispose()
    {
        _closing.Cancel();
        if (Volatile.Read(ref _pending) == 0)
        {
            _drained.TrySetResult();
        }

        // Not disposed: the cancelled operation may still unregister from its token.
        _drained.Task.Wait(s_drainLimit);
    }
}
