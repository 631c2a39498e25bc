using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Transport.Internal;

namespace NetStream.Transport.Hooks;

/// <summary>
/// Runs the <c>accepted</c> hooks on a connection and then the application, as connection middleware: the built-in
/// IP lists and limits first, then the registered hooks in registration order. Kestrel endpoints and the hosted
/// server run it for you; Bedrock-style code that accepts from a <see cref="NetStreamListener"/> itself calls
/// <see cref="RunAsync"/>. Resolve it from DI.
/// </summary>
public sealed class AcceptedHookChain
{
    private readonly Step[] _steps;
    private readonly bool _needsScope;
    private readonly TimeSpan _timeout;
    private readonly IServiceProvider _services;
    private readonly ILogger _logger;
    private readonly NetStreamMetrics _metrics;

    internal AcceptedHookChain(
        IEnumerable<AcceptedHookRegistration> registrations,
        HookOptions options,
        IServiceProvider services,
        ILoggerFactory loggerFactory,
        NetStreamMetrics metrics)
    {
        _services = services;
        _timeout = options.Timeout;
        _logger = loggerFactory.CreateLogger("NetStream.Hooks");
        _metrics = metrics;
        _steps = [.. BuiltIn(options), .. registrations.Select(r => Resolve(r, services))];
        _needsScope = _steps.Any(s => s.Hook is null);
    }

    /// <summary>Whether there is no hook to run: the chain then calls the application directly.</summary>
    public bool IsEmpty => _steps.Length == 0;

    /// <summary>
    /// Runs the hooks on <paramref name="connection"/> and, unless one refuses it, <paramref name="next"/> on the connection
    /// they leave, with their address info in its features (<c>Features.Get&lt;AddressInfo&gt;()</c>). A refused
    /// connection is closed (reset or FIN), logged and counted; <paramref name="next"/> does not run. Dispose the
    /// original connection after this returns, as after any connection middleware.
    /// </summary>
    /// <param name="connection">The accepted connection.</param>
    /// <param name="next">The application.</param>
    /// <param name="endpoint">The endpoint's name for the per-endpoint limit; default the connection's local address.</param>
    public Task RunAsync(ConnectionContext connection, ConnectionDelegate next, string? endpoint = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(next);
        return IsEmpty ? next(connection) : RunChainAsync(connection, next, endpoint ?? connection.LocalEndPoint?.ToString() ?? string.Empty);
    }

    private async Task RunChainAsync(ConnectionContext connection, ConnectionDelegate next, string endpoint)
    {
        var scope = _needsScope ? _services.CreateAsyncScope() : (AsyncServiceScope?)null;
        var addressInfo = connection.Features.Get<AddressInfo>() ?? AddressInfo.FromConnection(connection);
        var context = new AcceptedContext(connection, addressInfo, endpoint, scope?.ServiceProvider ?? _services);
        try
        {
            if (await RunHooksAsync(context).ConfigureAwait(false))
            {
                context.Connection.Features.Set(context.AddressInfo);
                await next(context.Connection).ConfigureAwait(false);
            }
        }
        finally
        {
            context.RunClosedCallbacks();
            if (scope is { } own)
            {
                await own.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Runs every step; <see langword="false"/> if one refused the connection (already closed, logged, counted).</summary>
    private async ValueTask<bool> RunHooksAsync(AcceptedContext context)
    {
        using var deadline = _timeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(_timeout);
        context.CancellationToken = deadline?.Token ?? CancellationToken.None;
        foreach (var step in _steps)
        {
            IAcceptedHook? hook = step.Hook;
            AcceptedResult result;
            try
            {
                hook ??= (IAcceptedHook)context.Services.GetRequiredService(step.Type!);
                var pending = hook.AcceptedAsync(context);
                result = pending.IsCompletedSuccessfully
                    ? pending.Result
                    : await pending.AsTask().WaitAsync(context.CancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline is { IsCancellationRequested: true })
            {
                Log.HookTimedOut(_logger, Name(hook, step), context.Connection.ConnectionId, context.AddressInfo.RemoteEndPoint, _timeout.TotalMilliseconds);
                Refuse(context.Connection, RefusalReasons.HookTimeout, RefusalMode.Reset);
                return false;
            }
            catch (Exception e)
            {
                Log.HookFailed(_logger, Name(hook, step), context.Connection.ConnectionId, context.AddressInfo.RemoteEndPoint, e);
                Refuse(context.Connection, RefusalReasons.HookFailed, RefusalMode.Reset);
                return false;
            }

            if (result.IsRefused)
            {
                Log.ConnectionRefused(_logger, context.Connection.ConnectionId, context.AddressInfo.RemoteEndPoint, Name(hook, step), result.RefusalReason!);
                Refuse(context.Connection, result.RefusalReason!, result.RefusalMode);
                return false;
            }

            context.Connection = result.Connection ?? context.Connection;
            context.AddressInfo = result.AddressInfo ?? context.AddressInfo;
        }

        return true;
    }

    private void Refuse(ConnectionContext connection, string reason, RefusalMode mode)
    {
        _metrics.Refused(reason);
        if (mode == RefusalMode.Reset)
        {
            connection.Abort(new ConnectionAbortedException($"Refused by an accepted hook: {reason}."));
            return;
        }

        // Completing both directions makes the transport send FIN once the connection is disposed.
        connection.Transport.Input.Complete();
        connection.Transport.Output.Complete();
    }

    private static string Name(IAcceptedHook? hook, Step step) =>
        hook is DelegateAcceptedHook function ? function.ToString() : (hook?.GetType() ?? step.Type!).Name;

    private static IEnumerable<Step> BuiltIn(HookOptions options)
    {
        if (options.Allow.Count > 0 || options.Deny.Count > 0)
        {
            yield return new Step(new IpFilterHook(IpNetworks.ParseAll(options.Allow), IpNetworks.ParseAll(options.Deny)), null);
        }

        if (options.MaxConnectionsPerEndpoint is not null || options.MaxConnectionsPerIp is not null)
        {
            yield return new Step(new ConnectionLimitHook(options.MaxConnectionsPerEndpoint, options.MaxConnectionsPerIp), null);
        }
    }

    private static Step Resolve(AcceptedHookRegistration registration, IServiceProvider services) => registration switch
    {
        { Instance: { } instance } => new Step(instance, null),
        { Lifetime: ServiceLifetime.Singleton } => new Step((IAcceptedHook)services.GetRequiredService(registration.Type!), null),
        _ => new Step(null, registration.Type),
    };

    /// <summary>A hook resolved once, or a type resolved per connection from its scope.</summary>
    private readonly record struct Step(IAcceptedHook? Hook, Type? Type);
}
