using System.Net;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>The command of a PROXY protocol header.</summary>
public enum ProxyCommand
{
    /// <summary>
    /// The proxy opened the connection on its own behalf (a health check, for example): the connection's real
    /// endpoints stand. A version 1 <c>UNKNOWN</c> line is reported as this too.
    /// </summary>
    Local,

    /// <summary>The proxy relays a client's connection: the header names the client and the address it connected to.</summary>
    Proxy,
}

/// <summary>
/// The PROXY protocol header (HAProxy's <c>doc/proxy-protocol.txt</c>, version 1 or 2) a trusted proxy sent at the
/// start of a connection, as a connection feature.
/// </summary>
public interface IProxyProtocolFeature
{
    /// <summary>The protocol version of the header: 1 (the text line) or 2 (the binary header).</summary>
    int Version { get; }

    /// <summary>Whether the header relays a client (<see cref="ProxyCommand.Proxy"/>) or not (<see cref="ProxyCommand.Local"/>).</summary>
    ProxyCommand Command { get; }

    /// <summary>The proxy's own address: the connection's real peer, which sent the header.</summary>
    EndPoint? ProxyEndPoint { get; }

    /// <summary>
    /// The client the proxy relays: an <see cref="IPEndPoint"/>, or a <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/>
    /// for a named Unix socket. <see langword="null"/> for a <see cref="ProxyCommand.Local"/> header, a version 1
    /// <c>UNKNOWN</c> line, a version 2 <c>UNSPEC</c> family and an unnamed Unix socket.
    /// </summary>
    EndPoint? SourceEndPoint { get; }

    /// <summary>The address the client connected to at the proxy; <see langword="null"/> when <see cref="SourceEndPoint"/> is.</summary>
    EndPoint? DestinationEndPoint { get; }

    /// <summary>
    /// Every TLV of a version 2 header, as sent: in order, duplicates and unknown types included, with the value bytes
    /// copied. Empty for version 1.
    /// </summary>
    IReadOnlyList<ProxyTlv> Tlvs { get; }

    /// <summary>The application protocol the client negotiated (TLV <c>PP2_TYPE_ALPN</c>, 0x01), such as <c>h2</c>.</summary>
    string? Alpn { get; }

    /// <summary>The host name the client asked for (TLV <c>PP2_TYPE_AUTHORITY</c>, 0x02): with TLS, its SNI.</summary>
    string? Authority { get; }

    /// <summary>The proxy's opaque identifier of the connection, up to 128 bytes (TLV <c>PP2_TYPE_UNIQUE_ID</c>, 0x05).</summary>
    ReadOnlyMemory<byte>? UniqueId { get; }

    /// <summary>How the client connected to the proxy over TLS (TLV <c>PP2_TYPE_SSL</c>, 0x20).</summary>
    ProxySslInfo? Ssl { get; }

    /// <summary>The AWS VPC endpoint the client came through (TLV 0xEA, subtype 0x01), such as <c>vpce-08d2bf15fac5001c9</c>.</summary>
    string? AwsVpcEndpointId { get; }

    /// <summary>The Azure Private Link identifier of the client's private endpoint (TLV 0xEE, subtype 0x01).</summary>
    uint? AzurePrivateLinkId { get; }

    /// <summary>The Google Cloud Private Service Connect connection identifier (TLV 0xE0).</summary>
    ulong? GcpPscConnectionId { get; }
}

/// <summary>One type-length-value field of a version 2 PROXY protocol header, as sent.</summary>
/// <remarks>
/// Equality is <see cref="ReadOnlyMemory{T}"/>'s: two TLVs are equal when they share the same memory, not merely the same
/// bytes; compare <c>Value.Span</c> with <c>SequenceEqual</c> for that.
/// </remarks>
/// <param name="Type">The type byte, such as 0x01 for ALPN.</param>
/// <param name="Value">The value bytes, copied out of the connection's buffers.</param>
public readonly record struct ProxyTlv(byte Type, ReadOnlyMemory<byte> Value);

/// <summary>The TLS details a proxy relays about its client's connection (TLV <c>PP2_TYPE_SSL</c>, 0x20).</summary>
public sealed class ProxySslInfo
{
    internal ProxySslInfo(byte client, uint verify, IReadOnlyList<ProxyTlv> subTlvs, string? version, string? commonName,
        string? cipher, string? signatureAlgorithm, string? keyAlgorithm)
    {
        Client = client;
        Verify = verify;
        SubTlvs = subTlvs;
        Version = version;
        CommonName = commonName;
        Cipher = cipher;
        SignatureAlgorithm = signatureAlgorithm;
        KeyAlgorithm = keyAlgorithm;
    }

    /// <summary>
    /// Bit flags: 0x01 (<c>PP2_CLIENT_SSL</c>) the client connected over TLS; 0x02 (<c>PP2_CLIENT_CERT_CONN</c>) it
    /// presented a certificate on this connection; 0x04 (<c>PP2_CLIENT_CERT_SESS</c>) it presented one at least once in
    /// this TLS session.
    /// </summary>
    public byte Client { get; }

    /// <summary>0 when the client presented a certificate and the proxy verified it; anything else otherwise.</summary>
    public uint Verify { get; }

    /// <summary>The TLS version, such as <c>TLSv1.3</c> (sub-TLV 0x21).</summary>
    public string? Version { get; }

    /// <summary>The Common Name of the client certificate's subject (sub-TLV 0x22).</summary>
    public string? CommonName { get; }

    /// <summary>The cipher, such as <c>ECDHE-RSA-AES128-GCM-SHA256</c> (sub-TLV 0x23).</summary>
    public string? Cipher { get; }

    /// <summary>The algorithm that signed the proxy's own certificate, such as <c>RSA-SHA256</c> (sub-TLV 0x24).</summary>
    public string? SignatureAlgorithm { get; }

    /// <summary>The key algorithm of the proxy's own certificate, such as <c>RSA2048</c> (sub-TLV 0x25).</summary>
    public string? KeyAlgorithm { get; }

    /// <summary>Every sub-TLV, as sent: in order, duplicates and unknown types included.</summary>
    public IReadOnlyList<ProxyTlv> SubTlvs { get; }
}
