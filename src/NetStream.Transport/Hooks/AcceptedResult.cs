using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Hooks;

/// <summary>What an <see cref="IAcceptedHook"/> decided: the seed's <c>sock, err, ai</c>.</summary>
public readonly struct AcceptedResult
{
    private AcceptedResult(ConnectionContext? connection, AddressInfo? addressInfo, string? refusalReason, RefusalMode refusalMode)
    {
        Connection = connection;
        AddressInfo = addressInfo;
        RefusalReason = refusalReason;
        RefusalMode = refusalMode;
    }

    /// <summary>Pass the connection and its address info on unchanged.</summary>
    public static AcceptedResult Pass => default;

    /// <summary>The replacement connection, or <see langword="null"/> to keep the current one.</summary>
    public ConnectionContext? Connection { get; }

    /// <summary>The replacement address info, or <see langword="null"/> to keep the current one.</summary>
    public AddressInfo? AddressInfo { get; }

    /// <summary>Why the connection was refused; <see langword="null"/> unless it was.</summary>
    public string? RefusalReason { get; }

    /// <summary>How a refused connection is closed.</summary>
    public RefusalMode RefusalMode { get; }

    /// <summary>Whether the connection was refused.</summary>
    public bool IsRefused => RefusalReason is not null;

    /// <summary>
    /// Pass on a replacement connection and/or address info. A replacement typically wraps the connection it replaces
    /// and forwards <c>Transport</c>, <c>Features</c> and <c>Abort</c>, but not <c>DisposeAsync</c>: the chain disposes
    /// every replacement once, the outermost first, when the connection is over (or when it refuses it, or when the hook
    /// returns it past the time limit), and the connection as accepted stays its acceptor's to dispose.
    /// </summary>
    /// <param name="connection">The connection the next hooks and the application get; <see langword="null"/> keeps the current one.</param>
    /// <param name="addressInfo">The address info the next hooks and the application get; <see langword="null"/> keeps the current one.</param>
    public static AcceptedResult Replace(ConnectionContext? connection = null, AddressInfo? addressInfo = null) =>
        new(connection, addressInfo, null, default);

    /// <summary>Refuse the connection: it is closed, the refusal is logged and counted, no later hook runs.</summary>
    /// <param name="reason">
    /// A short fixed code such as <c>ip_denied</c>. It is the <c>error.type</c> tag of <c>netstream.connections.refused</c>,
    /// so keep per-connection values out of it.
    /// </param>
    /// <param name="mode">Reset (RST, the default) or a graceful close (FIN).</param>
    public static AcceptedResult Refuse(string reason, RefusalMode mode = RefusalMode.Reset)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return new(null, null, reason, mode);
    }
}

/// <summary>How a refused connection is closed.</summary>
public enum RefusalMode
{
    /// <summary>Abort: the peer gets a reset (RST) and the server keeps no TIME_WAIT state.</summary>
    Reset,

    /// <summary>Close gracefully: the peer reads end-of-stream (FIN).</summary>
    Close,
}
