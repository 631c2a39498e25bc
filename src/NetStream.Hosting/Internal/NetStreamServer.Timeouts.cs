using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using NetStream.Transport.Internal;

namespace NetStream.Hosting.Internal;

/// <summary>
/// <c>FirstByteTimeout</c> and <c>IdleTimeout</c>: one timer for the whole server looks at the connections of the
/// endpoints that have a timeout, and closes those past it. The I/O loops only note the time of their last byte.
/// </summary>
internal sealed partial class NetStreamServer
{
    /// <summary>The timer's period bounds: a timeout is seen this late at most (a quarter of the shortest, within these).</summary>
    private static readonly TimeSpan MinWatchPeriod = TimeSpan.FromMilliseconds(50);

    private static readonly TimeSpan MaxWatchPeriod = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<ConnectionContext, Watched> _watched = new();
    private readonly CancellationTokenSource _watchStopped = new();
    private Task _watchdog = Task.CompletedTask;

    private static TimeSpan TimeoutOf(TimeSpan? endpoint, TimeSpan server) => endpoint ?? server;

    private void StartWatchdog()
    {
        var shortest = _endpoints
            .SelectMany(e => new[] { e.FirstByteTimeout, e.IdleTimeout })
            .Where(t => t != Timeout.InfiniteTimeSpan)
            .DefaultIfEmpty(Timeout.InfiniteTimeSpan)
            .Min();
        if (shortest != Timeout.InfiniteTimeSpan)
        {
            var period = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, MinWatchPeriod.Ticks, MaxWatchPeriod.Ticks));
            _watchdog = Task.Run(() => WatchAsync(period), CancellationToken.None);
        }
    }

    /// <summary>Puts a connection under its endpoint's timeouts, if it has any; <see langword="false"/> if not.</summary>
    private bool Watch(Endpoint endpoint, ConnectionContext connection)
    {
        if (!endpoint.HasTimeouts)
        {
            return false;
        }

        if (connection.Features.Get<IConnectionActivityFeature>() is not { } activity)
        {
            // A connection type of a new_connection hook's that does not wrap NetStream's: its bytes cannot be seen.
            if (Interlocked.Exchange(ref endpoint.UnwatchableSaid, 1) == 0)
            {
                HostingLog.TimeoutsNotApplied(logger, endpoint.Name, connection.GetType().Name);
            }

            return false;
        }

        if (endpoint.ProxyProtocol is not null)
        {
            // Before the clock starts: a header that arrived already must not pass for the client's first byte.
            activity.ExpectPreamble();
        }

        _watched[connection] = new Watched(endpoint, activity, Environment.TickCount64);
        return true;
    }

    private async Task WatchAsync(TimeSpan period)
    {
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(_watchStopped.Token).ConfigureAwait(false))
            {
                var now = Environment.TickCount64;
                foreach (var (connection, watched) in _watched)
                {
                    if (watched.PastTimeout(now) is { } timeout && _watched.TryRemove(connection, out _))
                    {
                        TimedOut(connection, watched, timeout);
                    }
                    else if (watched.IsDone)
                    {
                        _watched.TryRemove(connection, out _);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    private void TimedOut(ConnectionContext connection, Watched watched, (string Reason, string Key, TimeSpan Value) timeout)
    {
        var endpoint = watched.Endpoint;
        HostingLog.ConnectionTimedOut(logger, connection.ConnectionId, endpoint.Name, timeout.Key, timeout.Value.TotalSeconds);
        metrics.TimedOut(endpoint.Tags, timeout.Reason);
        try
        {
            watched.Activity.TimedOut($"The connection timed out: {timeout.Key} = {timeout.Value}.");
        }
        catch (Exception e)
        {
            HostingLog.DisposeFailed(logger, connection.ConnectionId, endpoint.Name, e);
        }
    }

    /// <summary>A connection under timeouts: its endpoint, its bytes' clock, and when it was accepted.</summary>
    private sealed class Watched(Endpoint endpoint, IConnectionActivityFeature activity, long started)
    {
        public Endpoint Endpoint { get; } = endpoint;

        public IConnectionActivityFeature Activity { get; } = activity;

        /// <summary>Whether no timeout can apply any more: the first byte came, and there is no idle timeout.</summary>
        public bool IsDone => Endpoint.IdleTimeout == Timeout.InfiniteTimeSpan && Activity.HasReceived;

        /// <summary>Which timeout the connection is past at <paramref name="now"/>, if any.</summary>
        public (string Reason, string Key, TimeSpan Value)? PastTimeout(long now)
        {
            var firstByte = Endpoint.FirstByteTimeout;
            if (firstByte != Timeout.InfiniteTimeSpan && now - started >= firstByte.TotalMilliseconds && !Activity.HasReceived)
            {
                return ("first_byte", "FirstByteTimeout", firstByte);
            }

            var idle = Endpoint.IdleTimeout;
            if (idle != Timeout.InfiniteTimeSpan && now - Activity.LastActivity >= idle.TotalMilliseconds)
            {
                return ("idle", "IdleTimeout", idle);
            }

            return null;
        }
    }
}
