using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Hooks;

/// <summary>What an <see cref="IAcceptedHook"/> sees: the connection so far, its address info, and the chain's deadline.</summary>
public sealed class AcceptedContext
{
    private List<(Action<object?> Callback, object? State)>? _onClosed;

    internal AcceptedContext(ConnectionContext connection, AddressInfo addressInfo, string endpoint, IServiceProvider services)
    {
        Connection = connection;
        AddressInfo = addressInfo;
        Endpoint = endpoint;
        Services = services;
    }

    /// <summary>The connection, as the hooks before this one left it.</summary>
    public ConnectionContext Connection { get; internal set; }

    /// <summary>The connection's address info, as the hooks before this one left it.</summary>
    public AddressInfo AddressInfo { get; internal set; }

    /// <summary>The endpoint that accepted the connection: the hosted server's endpoint name, or Kestrel's listen address.</summary>
    public string Endpoint { get; }

    /// <summary>The services of this connection: a scope of its own when a scoped or transient hook is registered.</summary>
    public IServiceProvider Services { get; }

    /// <summary>Cancelled when the chain's time limit (<see cref="HookOptions.Timeout"/>) passes.</summary>
    public CancellationToken CancellationToken { get; internal set; }

    /// <summary>
    /// Runs <paramref name="callback"/> once the connection is over: after the application is done with it, or at once
    /// if a later hook refuses it. For releasing what a hook took, such as a connection slot.
    /// </summary>
    /// <param name="callback">Runs once; it must not throw.</param>
    /// <param name="state">Passed to <paramref name="callback"/>.</param>
    public void OnClosed(Action<object?> callback, object? state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        (_onClosed ??= []).Add((callback, state));
    }

    internal void RunClosedCallbacks()
    {
        if (_onClosed is not { } callbacks)
        {
            return;
        }

        _onClosed = null;
        for (var i = callbacks.Count - 1; i >= 0; i--)
        {
            callbacks[i].Callback(callbacks[i].State);
        }
    }
}
