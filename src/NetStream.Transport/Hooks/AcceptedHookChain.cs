using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Transport.Internal;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Transport.Hooks;

/// <summary>
/// Runs the <c>accepted</c> hooks on a connection and then the application, as connection middleware: the registered
/// hooks in registration order, with the built-in IP lists and limits first (or where
/// <see cref="NetStreamBuilder.AddBuiltInHooks"/> put them). Kestrel endpoints and the hosted server run it for you;
/// Bedrock-style code that accepts from a <see cref="NetStreamListener"/> itself calls <see cref="RunAsync(AcceptedConnection, ConnectionDelegate, string?)"/>.
/// Resolve it from DI.
/// </summary>
public sealed class AcceptedHookChain
{
    /// <summary>Refusals logged one by one per second at most; the rest are counted in one line.</summary>
    internal const int RefusalLogsPerSecond = 20;

    private readonly LogBudget _refusalLogs;
    private readonly Step[] _steps;
    private readonly TimeSpan _timeout;
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;
    private readonly NetStreamMetrics _metrics;

    internal AcceptedHookChain(
        IEnumerable<AcceptedHookRegistration> registrations,
        HookOptions options,
        ProxyProtocolOptions proxyProtocol,
        IServiceProvider services,
        ILoggerFactory loggerFactory,
        NetStreamMetrics metrics)
    {
        DefaultProxyProtocol = ReceiverFor(proxyProtocol);
        _services = services;
        _timeout = options.Timeout;
        _logger = loggerFactory.CreateLogger("NetStream.Hooks");
        _metrics = metrics;
        _refusalLogs = new LogBudget(RefusalLogsPerSecond, heldBack => Log.RefusalsNotLogged(_logger, heldBack, RefusalLogsPerSecond));
        _steps = Plan(registrations.ToList(), options, services);
    }

    /// <summary>Whether there is no hook to run: the chain then calls the application directly, at no cost.</summary>
    internal bool IsEmpty => _steps.Length == 0 && DefaultProxyProtocol is null;

    /// <summary>Whether any hook is registered or built in (the PROXY protocol receiver aside).</summary>
    internal bool HasSteps => _steps.Length > 0;

    /// <summary>The PROXY protocol receiver of <c>NetStream:ProxyProtocol</c>; <see langword="null"/> when it is off.</summary>
    internal ProxyProtocolReceiver? DefaultProxyProtocol { get; }

    /// <summary>A receiver for <paramref name="options"/>; <see langword="null"/> when it is off.</summary>
    internal static ProxyProtocolReceiver? ReceiverFor(ProxyProtocolOptions options) =>
        options.Mode == ProxyProtocolMode.Off ? null : new ProxyProtocolReceiver(options);

    /// <summary>
    /// Runs the hooks on <paramref name="connection"/> and, unless one refuses it, <paramref name="next"/> on the connection
    /// they leave, with their address info in its features (<c>Features.Get&lt;AddressInfo&gt;()</c>). A refused
    /// connection is closed (reset or FIN), logged and counted, and <paramref name="next"/> does not run. Connections a
    /// hook put in its place are disposed when this returns; <paramref name="connection"/> itself stays the caller's.
    /// </summary>
    /// <param name="connection">The accepted connection.</param>
    /// <param name="next">The application.</param>
    /// <param name="endpointName">The endpoint's name for the per-endpoint limit; default the connection's local address.</param>
    public Task RunAsync(ConnectionContext connection, ConnectionDelegate next, string? endpointName = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        return RunAsync(connection, next, endpointName, DefaultProxyProtocol);
    }

    /// <summary>As the public overload, with an endpoint's own PROXY protocol receiver (none: <see langword="null"/>).</summary>
    internal Task RunAsync(ConnectionContext connection, ConnectionDelegate next, string? endpointName, ProxyProtocolReceiver? proxyProtocol) =>
        _steps.Length == 0 && proxyProtocol is null
            ? next(connection)
            : RunChainAsync(connection, next, endpointName ?? connection.LocalEndPoint?.ToString() ?? string.Empty, proxyProtocol);

    /// <summary>As <see cref="RunAsync(ConnectionContext, ConnectionDelegate, string?)"/>, reusing the address info the accept already read.</summary>
    /// <param name="accepted">What <see cref="NetStreamListener.AcceptAsync(bool, CancellationToken)"/> returned.</param>
    /// <param name="next">The application.</param>
    /// <param name="endpointName">
    /// The endpoint's name for the per-endpoint limit; default the listener's address (so that a wildcard listener is
    /// one endpoint, whatever local address each peer reached).
    /// </param>
    public Task RunAsync(AcceptedConnection accepted, ConnectionDelegate next, string? endpointName = null)
    {
        ArgumentNullException.ThrowIfNull(accepted);
        if (accepted.AddressInfo is { } addressInfo && !IsEmpty)
        {
            accepted.Connection.Features.Set(addressInfo);
        }

        return RunAsync(accepted.Connection, next, endpointName ?? accepted.ListenerEndPoint?.ToString());
    }

    private async Task RunChainAsync(ConnectionContext connection, ConnectionDelegate next, string endpointName, ProxyProtocolReceiver? proxyProtocol)
    {
        var context = new AcceptedContext(connection, AddressInfo.Empty, endpointName, _services, _timeout);
        var replacements = new List<ConnectionContext>(0);
        Refusal? refusal = null;
        try
        {
            refusal = await RunHooksAsync(context, replacements, proxyProtocol).ConfigureAwait(false);
            if (refusal is null)
            {
                context.Connection.Features.Set(context.AddressInfo);
                await next(context.Connection).ConfigureAwait(false);
            }
        }
        finally
        {
            // Each step on its own: one that throws must not keep the next from giving back what it holds.
            if (refusal is null && connection is NetStreamConnection own)
            {
                // The application is done, the connection not yet: its last output may still wait for a peer that
                // reads slowly, or never. It holds its slots until that output is out (at most the close timeout), or
                // a peer could hold more connections than a limit allows by not reading; and gives them back before
                // its peer sees the FIN, so that the peer's next connect finds them free.
                own.OnOutputDone(() => _ = CloseContextAsync(context));
            }
            else
            {
                // Slots are given back before a refused peer sees its close, so its next connect finds them free.
                await CloseContextAsync(context).ConfigureAwait(false);
            }

            if (refusal is { } refused)
            {
                try
                {
                    Close(context, refused);
                }
                catch (Exception e)
                {
                    // A replacement's Abort or pipes are application code.
                    Log.RefusalCloseFailed(_logger, connection.ConnectionId, e);
                }
            }

            // Each replacement once, the outermost first; the original stays the caller's.
            for (var i = replacements.Count - 1; i >= 0; i--)
            {
                await DisposeReplacementAsync(replacements[i], connection.ConnectionId).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs every step; a refusal (already logged and counted) if one refused the connection or failed.</summary>
    private async ValueTask<Refusal?> RunHooksAsync(AcceptedContext context, List<ConnectionContext> replacements, ProxyProtocolReceiver? proxyProtocol)
    {
        var step = new Step(null, null, "(reading the address info)");
        try
        {
            context.AddressInfo = context.Original.Features.Get<AddressInfo>() ?? AddressInfo.FromConnection(context.Original);
            if (proxyProtocol is not null)
            {
                step = ProxyProtocolStep;
                var received = await proxyProtocol.ReceiveAsync(context.Original, context.AddressInfo.RemoteEndPoint, context.CancellationToken).ConfigureAwait(false);
                if (received.IsRefused)
                {
                    LogRefusal(context, step, $"{received.Reason} ({received.Detail})");
                    return Refuse(received.Reason!, RefusalMode.Reset);
                }

                if (received.Proxy is { } header)
                {
                    context.AddressInfo = ProxyProtocolReceiver.Apply(header, context.Original, context.AddressInfo);
                }
            }

            foreach (var current in _steps)
            {
                step = current;
                var hook = step.Hook ?? (IAcceptedHook)context.Services.GetRequiredService(step.Type!);
                var pending = hook.AcceptedAsync(context);
                var result = pending.IsCompletedSuccessfully
                    ? pending.Result
                    : await WaitAsync(pending, context, replacements).ConfigureAwait(false);

                // Taken before anything else, so that it is disposed whatever follows (once: a hook may hand back one
                // the chain has seen already, even the original).
                if (result.Connection is { } replacement && replacement != context.Connection)
                {
                    if (replacement != context.Original && !replacements.Contains(replacement))
                    {
                        replacements.Add(replacement);
                    }

                    context.Connection = replacement;
                }

                // A hook that blocked past the limit without awaiting is late all the same.
                if (context.IsPastDeadline)
                {
                    throw new OperationCanceledException();
                }

                if (result.IsRefused)
                {
                    LogRefusal(context, step, result.RefusalReason!);
                    return Refuse(result.RefusalReason!, result.RefusalMode);
                }

                context.AddressInfo = result.AddressInfo ?? context.AddressInfo;
            }

            return null;
        }
        catch (OperationCanceledException) when (context.IsPastDeadline)
        {
            if (TakeLogBudget())
            {
                Log.HookTimedOut(_logger, step.Name, context.Original.ConnectionId, new Peer(context.AddressInfo.RemoteEndPoint), _timeout.TotalMilliseconds);
            }

            return Refuse(RefusalReasons.HookTimeout, RefusalMode.Reset);
        }
        catch (OperationCanceledException) when (context.IsGone || (context.Original is not NetStreamConnection && context.Original.ConnectionClosed.IsCancellationRequested))
        {
            Log.ClosedDuringHooks(_logger, context.Original.ConnectionId, step.Name);
            return new Refusal(RefusalReasons.HookFailed, RefusalMode.Reset);
        }
        catch (Exception e) when (e is ConnectionResetException || (e is not OperationCanceledException && context.IsGone))
        {
            // The peer reset while a hook read from it (a load balancer's health check often closes so): the peer's
            // doing, not the hook's failure.
            Log.ClosedDuringHooks(_logger, context.Original.ConnectionId, step.Name);
            return new Refusal(RefusalReasons.HookFailed, RefusalMode.Reset);
        }
        catch (Exception e)
        {
            if (TakeLogBudget())
            {
                Log.HookFailed(_logger, step.Name, context.Original.ConnectionId, new Peer(context.AddressInfo.RemoteEndPoint), e);
            }

            return Refuse(RefusalReasons.HookFailed, RefusalMode.Reset);
        }
    }

    private async Task CloseContextAsync(AcceptedContext context)
    {
        var connectionId = context.Original.ConnectionId;
        try
        {
            await context.CloseAsync(e => Log.HookCallbackFailed(_logger, connectionId, e)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.HookCallbackFailed(_logger, connectionId, e);
        }
    }

    private async ValueTask<AcceptedResult> WaitAsync(ValueTask<AcceptedResult> pending, AcceptedContext context, List<ConnectionContext> replacements)
    {
        var task = pending.AsTask();
        try
        {
            return await task.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The hook runs on past the limit (or ended just as it passed): what it ends with is nobody's, so a
            // replacement it returns is disposed and a failure observed.
            _ = DisposeLateResultAsync(task, context, replacements, context.Original.ConnectionId);
            throw;
        }
    }

    private async Task DisposeLateResultAsync(Task<AcceptedResult> late, AcceptedContext context, List<ConnectionContext> replacements, string connectionId)
    {
        // What the chain had when the hook was late is the chain's to dispose (it adds nothing more once late).
        var known = new HashSet<ConnectionContext>(replacements) { context.Original };
        try
        {
            if ((await late.ConfigureAwait(false)).Connection is { } replacement && !known.Contains(replacement))
            {
                await DisposeReplacementAsync(replacement, connectionId).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Already refused for being late; its failure changes nothing.
        }
    }

    private async ValueTask DisposeReplacementAsync(ConnectionContext replacement, string connectionId)
    {
        try
        {
            await replacement.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Log.ReplacementDisposeFailed(_logger, connectionId, e);
        }
    }

    private void LogRefusal(AcceptedContext context, Step step, string reason)
    {
        if (TakeLogBudget())
        {
            Log.ConnectionRefused(_logger, context.Original.ConnectionId, new Peer(context.AddressInfo.RemoteEndPoint), step.Name, reason);
        }
    }

    /// <summary>Whether a refusal's log line fits in this second's budget (a peer can cause refusals at will).</summary>
    private bool TakeLogBudget() => _refusalLogs.TryTake();

    private Refusal Refuse(string reason, RefusalMode mode)
    {
        _metrics.Refused(reason);
        return new Refusal(reason, mode);
    }

    private static void Close(AcceptedContext context, Refusal refusal)
    {
        if (refusal.Mode == RefusalMode.Reset)
        {
            // The original too: a wrapper that does not forward Abort must not turn the reset into a FIN.
            var abort = new ConnectionAbortedException($"Refused by an accepted hook: {refusal.Reason}.");
            try
            {
                context.Connection.Abort(abort);
            }
            finally
            {
                context.Original.Abort(abort);
            }

            return;
        }

        // Completing both directions makes the transport send FIN once the connection is disposed.
        context.Connection.Transport.Input.Complete();
        context.Connection.Transport.Output.Complete();
    }

    private static Step[] Plan(List<AcceptedHookRegistration> registrations, HookOptions options, IServiceProvider services)
    {
        var builtIn = BuiltIn(options).ToList();
        var at = registrations.FindIndex(r => r.IsBuiltInMarker);
        var steps = registrations.Where(r => !r.IsBuiltInMarker).Select(r => Resolve(r, services)).ToList();
        steps.InsertRange(at < 0 ? 0 : registrations.Take(at).Count(r => !r.IsBuiltInMarker), builtIn);
        return [.. steps];
    }

    private static IEnumerable<Step> BuiltIn(HookOptions options)
    {
        if (options.Allow.Count > 0 || options.Deny.Count > 0)
        {
            yield return Step.Of(new IpFilterHook(IpNetworks.ParseAll(options.Allow), IpNetworks.ParseAll(options.Deny)));
        }

        if (options.MaxConnectionsPerEndpoint is not null || options.MaxConnectionsPerIp is not null)
        {
            yield return Step.Of(new ConnectionLimitHook(options.MaxConnectionsPerEndpoint, options.MaxConnectionsPerIp));
        }
    }

    private static Step Resolve(AcceptedHookRegistration registration, IServiceProvider services) => registration switch
    {
        { Instance: { } instance } => Step.Of(instance),
        { Lifetime: ServiceLifetime.Singleton } => Step.Of((IAcceptedHook)services.GetRequiredService(registration.Type!)),
        _ => new Step(null, registration.Type, registration.Type!.Name),
    };

    /// <summary>The PROXY protocol receiver, as the logs name it among the hooks.</summary>
    private static readonly Step ProxyProtocolStep = new(null, null, "ProxyProtocol");

    private readonly record struct Refusal(string Reason, RefusalMode Mode);

    /// <summary>A hook made once, or a type made per connection in its scope; named for the logs.</summary>
    private readonly record struct Step(IAcceptedHook? Hook, Type? Type, string Name)
    {
        public static Step Of(IAcceptedHook hook) => new(hook, null, hook is DelegateAcceptedHook ? hook.ToString()! : hook.GetType().Name);
    }
}
