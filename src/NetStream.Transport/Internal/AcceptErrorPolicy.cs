using System.Diagnostics;
using System.Net.Sockets;

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
/// The accept-error policy of one listener: classification, back-off and rate-limited warnings.
/// Kestrel's Sockets transport retries every error at once, so EMFILE becomes a hot loop; this one waits.
/// </summary>
internal sealed class AcceptErrorPolicy
{
    private static readonly TimeSpan s_warningInterval = TimeSpan.FromSeconds(5);
    private const int FirstDelayMs = 5;
    private const int MaxDelayMs = 1000;

    private int _delayMs;
    private long _lastWarning;
    private long _suppressed;

    // The back-off waits on a timer, and the runtime starts its timer thread at the first timer of the process. On
    // Linux starting a thread takes descriptors (CoreCLR opens a pipe for each new thread), so under EMFILE that first
    // Task.Delay throws OutOfMemoryException and the accept loop ends for good. Start the timer thread now, while
    // descriptors are free; it lives as long as the process.
    static AcceptErrorPolicy() => _ = Task.Delay(1);

    public static AcceptErrorKind Classify(SocketError error) => error switch
    {
        SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.Interrupted
            or SocketError.WouldBlock or SocketError.TryAgain or SocketError.ProtocolNotSupported
            or SocketError.ProtocolOption or SocketError.NetworkDown or SocketError.NetworkUnreachable
            or SocketError.HostDown or SocketError.HostUnreachable or SocketError.OperationNotSupported
            or SocketError.TimedOut => AcceptErrorKind.Transient,
        SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable => AcceptErrorKind.ResourceExhausted,
        _ => AcceptErrorKind.Unexpected,
    };

    /// <summary>The next wait: 5 ms, doubling to 1 s while failures go on.</summary>
    public int NextDelayMs() => _delayMs = _delayMs == 0 ? FirstDelayMs : Math.Min(_delayMs * 2, MaxDelayMs);

    /// <summary>Called after every successful accept.</summary>
    public void Succeeded() => _delayMs = 0;

    /// <summary>Whether to log this failure; at most one warning per interval, counting the rest.</summary>
    public bool ShouldWarn(out long suppressed)
    {
        var now = Stopwatch.GetTimestamp();
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
