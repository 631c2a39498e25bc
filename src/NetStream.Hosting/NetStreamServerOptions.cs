using NetStream.Transport;
using NetStream.Transport.Internal;

namespace NetStream.Hosting;

/// <summary>
/// Options of the hosted NetStream server, bound from the <c>NetStream</c> section next to the transport options
/// (<see cref="NetStreamTransportOptions"/>), which every endpoint inherits and may override.
/// </summary>
public sealed class NetStreamServerOptions
{
    /// <summary>The endpoints to bind, by name, e.g. <c>NetStream:Endpoints:Echo:Url</c> = <c>tcp://127.0.0.1:7007</c>.</summary>
    public Dictionary<string, NetStreamEndpointOptions> Endpoints { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// How long a stop lets running connections finish before aborting them. Default 30 seconds. The stop keeps within
    /// the host's own shutdown timeout (<c>HostOptions.ShutdownTimeout</c>, 30 s by default): it drains at most until a
    /// fifth of that (at most 5 s) is left, for aborting what still runs.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most connections served at once over all endpoints. At the limit the server stops accepting until one ends,
    /// so the kernel's backlog holds the rest. Default <see langword="null"/>: no limit.
    /// </summary>
    public int? MaxConnections { get; set; }

    /// <summary>
    /// How long a new connection may wait for its peer's first byte; past it the connection is closed (FIN), logged at
    /// Debug and counted in <c>netstream.connections.timed_out</c>. A peer that connects and says nothing holds a
    /// connection, its limit slots and its memory until then. Default 30 seconds; <see cref="Timeout.InfiniteTimeSpan"/>
    /// for protocols whose clients only listen. Each endpoint may set its own.
    /// </summary>
    public TimeSpan FirstByteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a connection may go without a byte in either direction (received, or handed to the kernel); past it
    /// the connection is closed (FIN), logged at Debug and counted. Default <see cref="Timeout.InfiniteTimeSpan"/>:
    /// quiet connections that live for hours are normal in many protocols (database pools, MQTT, server push), and
    /// only the protocol knows how quiet is too quiet. Each endpoint may set its own.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = Timeout.InfiniteTimeSpan;
}

/// <summary>
/// One endpoint of the hosted server. Its section may also set any transport option (backlog, socket options,
/// Unix file mode) for this endpoint alone.
/// </summary>
[ConfigurationParts(typeof(NetStreamTransportOptions))]
public sealed class NetStreamEndpointOptions
{
    /// <summary>
    /// Where to listen: <c>tcp://127.0.0.1:7007</c>, <c>tcp://[::]:7007</c> (dual-mode), <c>tcp://*:7007</c>,
    /// <c>unix:/run/app.sock</c>, <c>fd:3</c> for an inherited listening descriptor, or a socket systemd passed by
    /// socket activation (<c>LISTEN_PID</c>, <c>LISTEN_FDS</c>, <c>LISTEN_FDNAMES</c>):
    /// <list type="bullet">
    /// <item><c>systemd:</c> the only socket passed (an error when systemd passed several);</item>
    /// <item><c>systemd:1</c> by 0-based index among the passed sockets, in the order of the <c>.socket</c> unit's
    /// <c>Listen*=</c> lines (index 0 is descriptor 3);</item>
    /// <item><c>systemd:web</c> by name, the unit's <c>FileDescriptorName=</c> as listed in <c>LISTEN_FDNAMES</c>
    /// (exact, case-sensitive; a name of digits only is read as an index); the name must pick exactly one socket.</item>
    /// </list>
    /// A <c>systemd:</c> URL without the variables, with <c>LISTEN_PID</c> another process's, or picking no socket,
    /// stops start-up with an error naming the endpoint's key. Once every endpoint is bound, a server that took a
    /// passed socket unsets the three variables so that child processes do not inherit them.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>Most connections this endpoint serves at once. Default <see langword="null"/>: no limit of its own.</summary>
    public int? MaxConnections { get; set; }

    /// <summary>This endpoint's <see cref="NetStreamServerOptions.FirstByteTimeout"/>. Default <see langword="null"/>: the server's.</summary>
    public TimeSpan? FirstByteTimeout { get; set; }

    /// <summary>This endpoint's <see cref="NetStreamServerOptions.IdleTimeout"/>. Default <see langword="null"/>: the server's.</summary>
    public TimeSpan? IdleTimeout { get; set; }
}
