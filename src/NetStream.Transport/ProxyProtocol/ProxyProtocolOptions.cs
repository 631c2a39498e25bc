namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// The PROXY protocol receiver (HAProxy's v1 and v2): a load balancer in front of the server tells it the real client
/// in a header before the connection's own bytes. Bound from <c>NetStream:ProxyProtocol</c> (per endpoint in the hosted
/// server; one set for Kestrel's endpoints, or per endpoint with <c>listenOptions.UseProxyProtocol()</c>).
/// </summary>
public sealed class ProxyProtocolOptions
{
    /// <summary>Whether a header is read: <see cref="ProxyProtocolMode.Off"/> (default), required, or optional.</summary>
    public ProxyProtocolMode Mode { get; set; }

    /// <summary>
    /// The proxies whose headers are believed: CIDR networks or single addresses, and <c>unix</c> for any Unix socket peer.
    /// A peer outside them is refused (<see cref="ProxyProtocolMode.Require"/>) or served as itself
    /// (<see cref="ProxyProtocolMode.Optional"/>), its header never read. Must not be empty while <see cref="Mode"/> is on,
    /// unless <see cref="AllowAnyPeer"/> says so.
    /// </summary>
    public List<string> TrustedProxies { get; } = [];

    /// <summary>
    /// Believes every peer's header: only where nothing but the proxy can reach the endpoint (a firewall, a private
    /// network). Anyone else could then claim any address. Default <see langword="false"/>.
    /// </summary>
    public bool AllowAnyPeer { get; set; }

    /// <summary>How long a trusted peer may take to send its whole header; past it the connection is refused. Default 5 seconds; at least 1 second.</summary>
    public TimeSpan HeaderTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest header taken, TLVs included (v2 allows 16 + 65535 bytes). Default 4096; from 232 to 65551.</summary>
    public int MaxHeaderBytes { get; set; } = 4096;

    /// <summary>Whether a v2 header's CRC32C TLV, when present, must match; a mismatch refuses the connection. Default <see langword="true"/>.</summary>
    public bool VerifyCrc32c { get; set; } = true;

    internal ProxyProtocolOptions Clone()
    {
        var copy = new ProxyProtocolOptions
        {
            Mode = Mode,
            AllowAnyPeer = AllowAnyPeer,
            HeaderTimeout = HeaderTimeout,
            MaxHeaderBytes = MaxHeaderBytes,
            VerifyCrc32c = VerifyCrc32c,
        };
        copy.TrustedProxies.AddRange(TrustedProxies);
        return copy;
    }
}

/// <summary>Whether the PROXY protocol receiver reads a header.</summary>
public enum ProxyProtocolMode
{
    /// <summary>No header is read: the connection's own bytes start at once.</summary>
    Off,

    /// <summary>Every connection must start with a valid header from a trusted proxy; anything else is refused.</summary>
    Require,

    /// <summary>
    /// A trusted peer's connection may start with a header: told from the first bytes (a header's signature or not),
    /// never by waiting for one. Other peers are served as themselves. Suits protocols whose clients speak first.
    /// </summary>
    Optional,
}
