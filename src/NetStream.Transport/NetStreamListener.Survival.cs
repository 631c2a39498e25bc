using System.Diagnostics;
using System.Net.Sockets;
using NetStream.Transport.Internal;

namespace NetStream.Transport;

/// <summary>
/// How a listener survives what is not one connection's fault: accept errors (by errno: retried, or backed off from and
/// said at a bounded rate, and a streak of them said once), and the process's file descriptors running short.
/// </summary>
public sealed partial class NetStreamListener
{
    private void Accepted()
    {
        _descriptors.Opened();
        if (_errors.Succeeded() is { } failedFor)
        {
            Log.AcceptingAgain(_logger, EndPoint, failedFor.TotalSeconds);
            CountNotAccepting(false);
        }
    }

    /// <summary>Keeps <c>netstream.listeners.not_accepting</c> at 1 while this endpoint is not accepting, 0 once it is or is unbound.</summary>
    private void CountNotAccepting(bool notAccepting)
    {
        if (Interlocked.Exchange(ref _countedNotAccepting, notAccepting ? 1 : 0) != (notAccepting ? 1 : 0))
        {
            _metrics.NotAccepting(_endPointTags, notAccepting ? +1 : -1);
        }

        // A streak said as the listener is unbound: the unbind's own reset may have come first.
        if (notAccepting && Volatile.Read(ref _unbindCalled) != 0)
        {
            CountNotAccepting(false);
        }
    }

    /// <summary>
    /// Waits, <paramref name="open"/> of <paramref name="limit"/> descriptors open, while one more connection would leave
    /// fewer free than the reserve; the kernel's backlog holds the peers meanwhile. <see langword="false"/> once unbound.
    /// </summary>
    private async ValueTask<bool> HoldBackAsync(int open, long limit, CancellationToken cancellationToken)
    {
        _metrics.HeldBack(_endPointTags);
        Volatile.Write(ref _holdingBack, 1);
        try
        {
            return await HoldBackCoreAsync(open, limit, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _holdingBack, 0);
        }
    }

    private async ValueTask<bool> HoldBackCoreAsync(int open, long limit, CancellationToken cancellationToken)
    {
        var now = Stopwatch.GetTimestamp();
        var said = _holdingBackSaid == 0 || Stopwatch.GetElapsedTime(_holdingBackSaid, now) >= HoldingBackLogInterval;
        if (said)
        {
            _holdingBackSaid = now;
            Log.HoldingBack(_logger, EndPoint, open, limit, _options.DescriptorReserve ?? DescriptorHeadroom.DefaultReserve(limit));
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_unboundToken, cancellationToken);
        try
        {
            while (true)
            {
                var closed = _descriptors.NextClose();
                if (_descriptors.HasRoom(_options.DescriptorReserve, out open, out _))
                {
                    break;
                }

                try
                {
                    // Descriptors others close are seen at the next count.
                    await closed.WaitAsync(DescriptorRecheck, stop.Token).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
            }
        }
        catch (OperationCanceledException) when (_unboundToken.IsCancellationRequested)
        {
            return false;
        }

        if (said)
        {
            Log.HoldingBackEnded(_logger, EndPoint, open, Stopwatch.GetElapsedTime(now).TotalSeconds);
        }

        return true;
    }

    /// <summary>
    /// Applies the accept-error policy: <see langword="false"/> if the listener was unbound meanwhile; a connection if
    /// asking the kernel for the errno the runtime dropped accepted one.
    /// </summary>
    private async ValueTask<(bool Survived, Socket? Socket)> SurviveAcceptErrorAsync(Exception error)
    {
        int? errno = null;
        if (error is AcceptErrnoException exact)
        {
            // The engine's own accept4: the errno is known, and nothing is pending (it would have been accepted).
            errno = exact.Errno;
        }
        else if (error is SocketException socketError)
        {
            errno = Errno.Of(socketError);
            if (KernelAccept.TryAccept(_socket, out var asked) is { } pending)
            {
                // The failure was that one connection's: the next one is served.
                _metrics.AcceptError(_endPointTags, errno is { } dropped ? Errno.Name(dropped) : "unknown");
                return (true, pending);
            }

            errno = asked ?? errno;
        }

        var name = errno is { } known ? Errno.Name(known) : error.GetType().Name;
        _metrics.AcceptError(_endPointTags, name);
        var kind = AcceptErrorPolicy.Classify(errno);
        if (kind == AcceptErrorKind.Transient)
        {
            Log.AcceptRetried(_logger, EndPoint, name);
            return (true, null);
        }

        var now = Stopwatch.GetTimestamp();
        var delayMs = _errors.NextDelayMs();
        if (_errors.ShouldWarn(now, out var suppressed))
        {
            if (kind == AcceptErrorKind.ResourceExhausted)
            {
                Log.AcceptBackoff(_logger, EndPoint, name, delayMs, suppressed);
            }
            else
            {
                Log.AcceptFailed(_logger, EndPoint, name, delayMs, suppressed, error);
            }
        }

        if (_errors.Failed(now))
        {
            Log.NotAccepting(_logger, EndPoint, AcceptErrorPolicy.NotAcceptingAfter.TotalSeconds, name);
            CountNotAccepting(true);
        }

        _metrics.AcceptBackoff(_endPointTags);
        try
        {
            await Task.Delay(delayMs, _unboundToken).ConfigureAwait(false);
            return (true, null);
        }
        catch (OperationCanceledException)
        {
            return (false, null);
        }
    }
}
