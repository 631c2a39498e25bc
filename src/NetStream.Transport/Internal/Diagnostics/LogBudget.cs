using System.Diagnostics;

namespace NetStream.Transport.Internal;

/// <summary>
/// At most so many log lines a second for an event a peer can cause at will (a refusal). The rest are counted and
/// reported in one line at the end of the second they fell in: a flood of refused connections must not become a flood
/// of log lines, and a burst that stops is still summed up.
/// </summary>
internal sealed class LogBudget
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(1);

    private readonly int _perSecond;
    private readonly Action<long> _reportHeldBack;
    private readonly Lock _gate = new();
    private long _windowStart;
    private int _used;
    private long _heldBack;

    /// <param name="perSecond">Lines a second.</param>
    /// <param name="reportHeldBack">Logs how many lines were held back; called on a pool thread.</param>
    public LogBudget(int perSecond, Action<long> reportHeldBack)
    {
        _perSecond = perSecond;
        _reportHeldBack = reportHeldBack;
    }

    /// <summary>Whether to log this one; if not, it is counted for the report at the end of this second.</summary>
    public bool TryTake()
    {
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            var elapsed = Stopwatch.GetElapsedTime(_windowStart, now);
            if (_windowStart == 0 || elapsed >= Window)
            {
                _windowStart = now;
                _used = 0;
                elapsed = TimeSpan.Zero;
            }

            if (_used < _perSecond)
            {
                _used++;
                return true;
            }

            if (_heldBack++ == 0)
            {
                _ = ReportAtEndOfWindowAsync(Window - elapsed);
            }

            return false;
        }
    }

    private async Task ReportAtEndOfWindowAsync(TimeSpan delay)
    {
        await Task.Delay(delay).ConfigureAwait(false);
        long heldBack;
        lock (_gate)
        {
            heldBack = _heldBack;
            _heldBack = 0;
        }

        try
        {
            _reportHeldBack(heldBack);
        }
        catch (Exception)
        {
            // A logger already disposed by a host that is stopping: nothing is left to tell, and a timer thread must
            // not end the process for it.
        }
    }
}
