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

    public ValueTask<Socket> AcceptAsync(CancellationToken cancellationToken)
    {
        // Counted before the runtime is called, and Dispose cancels before it reads the count: an accept that starts
        // after Dispose looked finds the token cancelled, and the runtime returns without a system call.
        Interlocked.Increment(ref _pending);
        ValueTask<Socket> accepting;
        try
        {
            // Kestrel and the hosted server accept without a token: the acceptor's own serves, with no allocation.
            accepting = cancellationToken.CanBeCanceled ? AcceptLinkedAsync(cancellationToken) : listener.AcceptAsync(_closing.Token);
        }
        catch
        {
            Returned();
            throw;
        }

        if (accepting.IsCompleted)
        {
            Returned();
            return accepting;
        }

        return ReturnedAfterAsync(accepting);
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

    private async ValueTask<Socket> AcceptLinkedAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        return await listener.AcceptAsync(linked.Token).ConfigureAwait(false);
    }

    private async ValueTask<Socket> ReturnedAfterAsync(ValueTask<Socket> accepting)
    {
        try
        {
            return await accepting.ConfigureAwait(false);
        }
        finally
        {
            Returned();
        }
    }

    private void Returned()
    {
        if (Interlocked.Decrement(ref _pending) == 0 && _closing.IsCancellationRequested)
        {
            _drained.TrySetResult();
        }
    }
}
