using System.Net;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>A parsed PROXY protocol header: what <see cref="ProxyHeaderParser"/> returns and the connection carries as a feature.</summary>
internal sealed class ProxyHeader : IProxyProtocolFeature
{
    public required int Version { get; init; }

    public required ProxyCommand Command { get; init; }

    // The parser sees bytes, not the socket: the hook fills this in from the connection's real peer.
    public EndPoint? ProxyEndPoint { get; internal set; }

    public EndPoint? SourceEndPoint { get; init; }

    public EndPoint? DestinationEndPoint { get; init; }

    public IReadOnlyList<ProxyTlv> Tlvs { get; init; } = [];

    public string? Alpn { get; init; }

    public string? Authority { get; init; }

    public ReadOnlyMemory<byte>? UniqueId { get; init; }

    public ProxySslInfo? Ssl { get; init; }

    public string? AwsVpcEndpointId { get; init; }

    public uint? AzurePrivateLinkId { get; init; }

    public ulong? GcpPscConnectionId { get; init; }
}
