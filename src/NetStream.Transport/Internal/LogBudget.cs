using System.Diagnostics;

namespace NetStream.Transport.Internal;

/// <summary>
/// At most so many log lines a second for an event a peer can cause at will (a refusal), counting the rest: a flood
/// of refused connections must not become a flood of log lines.
/// </summary>
internal sealed class LogBudget(int perSecond)
{
    private readonly Lock _gate = new();
    private long _windowStart;
    private int _used;
    private long _skipped;

    /// <summary>Whether to log this one; if so, <paramref name="skipped"/> says how many went unlogged before it.</summary>
    public bool TryTake(out long skipped)
    {
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            if (_windowStart == 0 || Stopwatch.GetElapsedTime(_windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                _windowStart = now;
                _used = 0;
            }

            if (_used < perSecond)
            {
                _used++;
                skipped = _skipped;
                _skipped = 0;
                return true;
            }

            _skipped++;
            skipped = 0;
            return false;
        }
    }
}
