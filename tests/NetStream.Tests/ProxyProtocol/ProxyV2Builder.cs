using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// Writes version 2 PROXY protocol headers as a proxy would send them, for the parser's tests and for the tests that
/// put a header in front of a real connection. Written from the specification, independently of the parser.
/// </summary>
internal static class ProxyV2Builder
{
    public const byte Alpn = 0x01;
    public const byte Authority = 0x02;
    public const byte Crc32c = 0x03;
    public const byte Noop = 0x04;
    public const byte UniqueId = 0x05;
    public const byte Ssl = 0x20;
    public const byte SslVersion = 0x21;
    public const byte SslCommonName = 0x22;
    public const byte SslCipher = 0x23;
    public const byte SslSignatureAlgorithm = 0x24;
    public const byte SslKeyAlgorithm = 0x25;
    public const byte Netns = 0x30;
    public const byte Gcp = 0xE0;
    public const byte Aws = 0xEA;
    public const byte Azure = 0xEE;

    /// <summary>The version and command byte: version 2, PROXY.</summary>
    public const byte V2Proxy = 0x21;

    /// <summary>The version and command byte: version 2, LOCAL.</summary>
    public const byte V2Local = 0x20;

    public static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>
    /// A PROXY header relaying <paramref name="source"/> to <paramref name="destination"/> over a stream: both
    /// <see cref="IPEndPoint"/> of one family, or both <see cref="UnixDomainSocketEndPoint"/>.
    /// </summary>
    /// <param name="crc32c">Whether to add a CRC32C TLV, first, with the right checksum.</param>
    public static byte[] Proxy(EndPoint source, EndPoint destination, IEnumerable<ProxyTlv>? tlvs = null, bool crc32c = false)
    {
        var (family, block) = AddressBlock(source, destination);
        return Header(V2Proxy, (byte)(family | 0x1), block, tlvs, crc32c);
    }

    /// <summary>
    /// A LOCAL header (a proxy's health check): family UNSPEC and no address block, unless
    /// <paramref name="source"/> and <paramref name="destination"/> are given, as AWS's load balancers send it.
    /// </summary>
    public static byte[] Local(IEnumerable<ProxyTlv>? tlvs = null, bool crc32c = false, EndPoint? source = null, EndPoint? destination = null)
    {
        if (source is null || destination is null)
        {
            return Header(V2Local, 0x00, [], tlvs, crc32c);
        }

        var (family, block) = AddressBlock(source, destination);
        return Header(V2Local, (byte)(family | 0x1), block, tlvs, crc32c);
    }

    /// <summary>Any header, well formed or not: the length field counts the address block and the TLVs given.</summary>
    public static byte[] Header(byte versionAndCommand, byte familyAndTransport, ReadOnlySpan<byte> addressBlock,
        IEnumerable<ProxyTlv>? tlvs = null, bool crc32c = false)
    {
        var all = (crc32c ? [new ProxyTlv(Crc32c, new byte[4])] : Enumerable.Empty<ProxyTlv>()).Concat(tlvs ?? []).ToList();
        var header = new List<byte>();
        header.AddRange(Signature.ToArray());
        header.Add(versionAndCommand);
        header.Add(familyAndTransport);
        header.AddRange(BigEndian16(addressBlock.Length + all.Sum(t => 3 + t.Value.Length)));
        header.AddRange(addressBlock.ToArray());
        foreach (var tlv in all)
        {
            header.AddRange(Encode(tlv));
        }

        var bytes = header.ToArray();
        if (crc32c)
        {
            // The CRC TLV is the first after the address block; its value was written as zeros.
            var offset = 16 + addressBlock.Length + 3;
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(offset), ReferenceCrc32C(bytes));
        }

        return bytes;
    }

    public static (byte Family, byte[] Block) AddressBlock(EndPoint source, EndPoint destination) => (source, destination) switch
    {
        (IPEndPoint s, IPEndPoint d) when s.AddressFamily == AddressFamily.InterNetwork && d.AddressFamily == AddressFamily.InterNetwork =>
            (0x10, [.. s.Address.GetAddressBytes(), .. d.Address.GetAddressBytes(), .. BigEndian16(s.Port), .. BigEndian16(d.Port)]),
        (IPEndPoint s, IPEndPoint d) when s.AddressFamily == AddressFamily.InterNetworkV6 && d.AddressFamily == AddressFamily.InterNetworkV6 =>
            (0x20, [.. s.Address.GetAddressBytes(), .. d.Address.GetAddressBytes(), .. BigEndian16(s.Port), .. BigEndian16(d.Port)]),
        (UnixDomainSocketEndPoint s, UnixDomainSocketEndPoint d) => (0x30, [.. UnixPath(s.ToString()), .. UnixPath(d.ToString())]),
        _ => throw new ArgumentException("Two IPv4, two IPv6 or two Unix socket endpoints."),
    };

    /// <summary>A 108-byte, null-padded <c>sun_path</c>.</summary>
    public static byte[] UnixPath(string path)
    {
        var field = new byte[108];
        Encoding.UTF8.GetBytes(path, field);
        return field;
    }

    public static ProxyTlv Tlv(byte type, string value) => new(type, Encoding.UTF8.GetBytes(value));

    public static ProxyTlv Tlv(byte type, params byte[] value) => new(type, value);

    public static ProxyTlv SslTlv(byte client, uint verify, params ProxyTlv[] subTlvs) =>
        new(Ssl, (byte[])[client, .. BigEndian32(verify), .. subTlvs.SelectMany(Encode)]);

    public static ProxyTlv AwsVpcEndpointTlv(string id) => new(Aws, (byte[])[0x01, .. Encoding.ASCII.GetBytes(id)]);

    public static ProxyTlv AzurePrivateLinkTlv(uint id)
    {
        var value = new byte[5];
        value[0] = 0x01;
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(1), id);
        return new(Azure, value);
    }

    public static ProxyTlv GcpPscTlv(ulong id)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(value, id);
        return new(Gcp, value);
    }

    public static byte[] Encode(ProxyTlv tlv) => [tlv.Type, .. BigEndian16(tlv.Value.Length), .. tlv.Value.Span];

    /// <summary>CRC-32C bit by bit, from the definition: a check on the parser's table, not a copy of it.</summary>
    public static uint ReferenceCrc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
            }
        }

        return ~crc;
    }

    private static byte[] BigEndian16(int value) => [(byte)(value >> 8), (byte)value];

    private static byte[] BigEndian32(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];
}
