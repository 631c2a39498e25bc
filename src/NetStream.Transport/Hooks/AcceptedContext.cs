using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Transport.Internal;

namespace NetStream.Transport.Hooks;

/// <summary>What an <see cref="IAcceptedHook"/> sees: the connection so far, its address info, and the chain's deadline.</summary>
[SuppressMessage("Reliability", "CA1001:Types that own disposable fields should be disposable", Justification = "The chain that makes a context ends it, deadline included, with CloseAsync; hooks only borrow it.")]
public sealed class AcceptedContext
{
    private readonly IServiceProvider _rootServices;
    private readonly TimeSpan _timeout;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly object _gate = new();
    private List<(Action<object?> Callback, object? State)>? _onClosed;
    private AsyncServiceScope? _scope;
    private CancellationTokenSource? _deadline;
    private Timer? _deadlineTimer;
    private CancellationTokenRegistration _connectionGone;
    private bool _closed;
    private volatile bool _gone;

    internal AcceptedContext(ConnectionContext connection, AddressInfo addressInfo, string endpointName, IServiceProvider services, TimeSpan timeout)
    {
        Original = connection;
        Connection = connection;
        AddressInfo = addressInfo;
        EndpointName = endpointName;
        _rootServices = services;
        _timeout = timeout;
    }

    /// <summary>The connection, as the hooks before this one left it.</summary>
    public ConnectionContext Connection { get; internal set; }

    /// <summary>The connection's address info, as the hooks before this one left it.</summary>
    public AddressInfo AddressInfo { get; internal set; }

    /// <summary>The endpoint that accepted the connection: the hosted server's endpoint name, or Kestrel's listen address.</summary>
    public string EndpointName { get; }

    /// <summary>The services of this connection: a scope of its own, made on first use, that ends with the connection.</summary>
    public IServiceProvider Services
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_closed, this);
                _scope ??= _rootServices.CreateAsyncScope();
                return _scope.Value.ServiceProvider;
            }
        }
    }

    /// <summary>
    /// Cancelled when the chain's time limit (<see cref="HookOptions.Timeout"/>) passes, or the connection is reset or
    /// aborted. A hook that waits on anything should pass it on. Not when the peer only half-closes: a client may send
    /// its request and FIN at once, and still wait for the answer.
    /// </summary>
    public CancellationToken CancellationToken
    {
        get
        {
            lock (_gate)
            {
                if (_closed)
                {
                    return new CancellationToken(canceled: true);
                }

                if (_deadline is null)
                {
                    // Made on first use: a chain of quick hooks pays for no timer.
                    _deadline = new CancellationTokenSource();
                    if (_timeout != Timeout.InfiniteTimeSpan)
                    {
                        // Not CancelAfter: its timer would let a hook's failing token callback end the process.
                        _deadlineTimer = new Timer(static state => ((AcceptedContext)state!).CancelDeadline(connectionGone: false), this, TimeLeft, Timeout.InfiniteTimeSpan);
                    }

                    // Not ConnectionClosed, which also fires at the peer's FIN: NetStream's own connection says when it is
                    // over for good; another connection type is left to the time limit.
                    if (Original is NetStreamConnection own)
                    {
                        _connectionGone = own.ConnectionGone.UnsafeRegister(static state => ((AcceptedContext)state!).CancelDeadline(connectionGone: true), this);
                    }
                }

                return _deadline.Token;
            }
        }
    }

    /// <summary>The connection as accepted, before any hook replaced it.</summary>
    internal ConnectionContext Original { get; }

    /// <summary>Whether the chain's time limit has passed.</summary>
    internal bool IsPastDeadline => _timeout != Timeout.InfiniteTimeSpan && (TimeLeft <= TimeSpan.Zero || TimerFired);

    // The timer may fire a hair before the stopwatch agrees; a cancellation for a connection gone is no timeout.
    private bool TimerFired => _deadline is { IsCancellationRequested: true } && !_gone;

    private TimeSpan TimeLeft
    {
        get
        {
            var left = _timeout - Stopwatch.GetElapsedTime(_started);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <summary>
    /// Runs <paramref name="callback"/> once the connection is over: after the application is done with it, or at once
    /// if a later hook refuses it (or if it is already over). For giving back what a hook took, such as a connection slot.
    /// </summary>
    /// <param name="callback">Runs once. An exception it throws is logged and does not stop the other callbacks.</param>
    /// <param name="state">Passed to <paramref name="callback"/>.</param>
    public void OnClosed(Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_gate)
        {
            if (!_closed)
            {
                (_onClosed ??= []).Add((callback, state));
                return;
            }
        }

        // A hook that outlived the chain's time limit: its connection is already over.
        callback(state);
    }

    /// <summary>Whether the connection was reset or aborted while the hooks ran.</summary>
    internal bool IsGone => _gone;

    /// <summary>Cancels the hooks' token: the time limit passed, or (<paramref name="connectionGone"/>) the connection is over.</summary>
    private void CancelDeadline(bool connectionGone)
    {
        if (connectionGone)
        {
            _gone = true;
        }

        CancellationTokenSource? deadline;
        lock (_gate)
        {
            deadline = _closed ? null : _deadline;
        }

        try
        {
            // Outside the lock: the token's callbacks are the hooks' own code.
            deadline?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The chain ended meanwhile.
        }
        catch (AggregateException)
        {
            // A hook's callback on the token failed. Its hook sees the token cancelled all the same, and this runs on
            // a timer or pool thread, where a failure would end the process.
        }
    }

    /// <summary>Ends the context: runs the close callbacks, newest first, then ends the scope and the deadline.</summary>
    internal async ValueTask CloseAsync(Action<Exception> callbackFailed)
    {
        List<(Action<object?> Callback, object? State)>? callbacks;
        AsyncServiceScope? scope;
        lock (_gate)
        {
            _closed = true;
            callbacks = _onClosed;
            scope = _scope;
            _onClosed = null;

            // A hook still running past the limit keeps a token that is already cancelled.
            // Unregister, not Dispose: that would wait for a running callback, which takes this lock.
            _connectionGone.Unregister();
            _deadlineTimer?.Dispose();
            _deadline?.Dispose();
        }

        for (var i = (callbacks?.Count ?? 0) - 1; i >= 0; i--)
        {
            try
            {
                callbacks![i].Callback(callbacks[i].State);
            }
            catch (Exception e)
            {
                callbackFailed(e);
            }
        }

        if (scope is { } own)
        {
            await own.DisposeAsync().ConfigureAwait(false);
        }
    }
}
