using System.Diagnostics;

namespace NetStream.Transport.Internal;

/// <summary>What an accept loop does about a failed <c>accept(2)</c>.</summary>
internal enum AcceptErrorKind
{
    /// <summary>The one pending connection went wrong (accept(2)'s man page: treat like EAGAIN): retry at once.</summary>
    Transient,

    /// <summary>The process or the kernel is out of descriptors or memory: back off, or the loop spins a core.</summary>
    ResourceExhausted,

    /// <summary>Anything else: logged as an error, backed off, and the loop goes on.</summary>
    Unexpected,
}

/// <summary>
/// The accept-error policy of one listener: classification by errno, back-off, rate-limited warnings, and the
/// streak of failures after which the endpoint is said not to be accepting. Kestrel's Sockets transport retries
/// every error at once, so EMFILE becomes a hot loop; this one waits.
/// </summary>
internal sealed class AcceptErrorPolicy
{
    /// <summary>How long nothing but failures may go on before the endpoint is said not to be accepting.</summary>
    public static readonly TimeSpan NotAcceptingAfter = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan s_warningInterval = TimeSpan.FromSeconds(5);
    private const int FirstDelayMs = 5;
    private const int MaxDelayMs = 1000;

    private int _delayMs;
    private long _lastWarning;
    private long _suppressed;
    private long _failingSince;
    private volatile bool _notAccepting;

    // The back-off waits on a timer, and the runtime starts its timer thread at the first timer of the process. On
    // Linux starting a thread takes descriptors (CoreCLR opens a pipe for each new thread), so under EMFILE that first
    // Task.Delay throws OutOfMemoryException and the accept loop ends for good. Start the timer thread now, while
    // descriptors are free; it lives as long as the process.
    static AcceptErrorPolicy() => _ = Task.Delay(1);

    /// <summary>Whether a streak of failures has lasted <see cref="NotAcceptingAfter"/> without one success.</summary>
    public bool IsNotAccepting => _notAccepting;

    /// <summary>Whether the last accept failed and was backed off from, with no success since (read by health checks).</summary>
    public bool IsBackingOff => Volatile.Read(ref _delayMs) != 0;

    /// <summary>As accept(2)'s man page says: the errors of one pending connection, of exhaustion, and the rest.</summary>
    /// <param name="errno">The errno accept failed with; <see langword="null"/> when unknown (the runtime's own failure).</param>
    public static AcceptErrorKind Classify(int? errno) => errno switch
    {
        // "Linux accept() passes already-pending network errors on the new socket as an error code": ENETDOWN, EPROTO,
        // ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH; EPERM is a firewall's refusal.
        Errno.ECONNABORTED or Errno.ECONNRESET or Errno.EINTR or Errno.EAGAIN or Errno.EPROTO or Errno.ENOPROTOOPT
            or Errno.ENETDOWN or Errno.ENETUNREACH or Errno.EHOSTDOWN or Errno.EHOSTUNREACH or Errno.ENONET
            or Errno.EOPNOTSUPP or Errno.ESOCKTNOSUPPORT or Errno.ETIMEDOUT or Errno.EPERM => AcceptErrorKind.Transient,
        Errno.EMFILE or Errno.ENFILE or Errno.ENOBUFS or Errno.ENOMEM or Errno.ENOSR => AcceptErrorKind.ResourceExhausted,
        _ => AcceptErrorKind.Unexpected,
    };

    /// <summary>The next wait: 5 ms, doubling to 1 s while failures go on.</summary>
    public int NextDelayMs() => _delayMs = _delayMs == 0 ? FirstDelayMs : Math.Min(_delayMs * 2, MaxDelayMs);

    /// <summary>
    /// Called after every successful accept; how long the endpoint had been said not to be accepting, if it had
    /// (once, for the line that says it accepts again).
    /// </summary>
    public TimeSpan? Succeeded()
    {
        _delayMs = 0;
        var since = _failingSince;
        _failingSince = 0;
        if (!_notAccepting)
        {
            return null;
        }

        _notAccepting = false;
        return Stopwatch.GetElapsedTime(since);
    }

    /// <summary>
    /// Counts a failure that is backed off from into the streak; <see langword="true"/> once, when the streak has just
    /// lasted <see cref="NotAcceptingAfter"/>.
    /// </summary>
    public bool Failed(long now)
    {
        if (_failingSince == 0)
        {
            _failingSince = now;
            return false;
        }

        if (_notAccepting || Stopwatch.GetElapsedTime(_failingSince, now) < NotAcceptingAfter)
        {
            return false;
        }

        _notAccepting = true;
        return true;
    }

    /// <summary>Whether to log this failure; at most one line per interval, counting the rest.</summary>
    public bool ShouldWarn(long now, out long suppressed)
    {
        if (_lastWarning != 0 && Stopwatch.GetElapsedTime(_lastWarning, now) < s_warningInterval)
        {
            _suppressed++;
            suppressed = 0;
            return false;
        }

        _lastWarning = now;
        suppressed = _suppressed;
        _suppressed = 0;
        return true;
    }
}
