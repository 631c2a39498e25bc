using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// The TLVs of a version 2 header: type (1 byte), length (2, big-endian), value. <see cref="Check"/> judges their
/// structure as far as the bytes have arrived; <see cref="Read"/> takes the values out of a whole, checked header.
/// </summary>
internal static class ProxyTlvReader
{
    private const int TlvHeaderBytes = 3;
    private const int SslFixedBytes = 5; // client (1) and verify (4), before the sub-TLVs
    private const int MaxUniqueIdBytes = 128;

    private const byte Alpn = 0x01;
    private const byte Authority = 0x02;
    private const byte Crc32c = 0x03;
    private const byte UniqueId = 0x05;
    private const byte Ssl = 0x20;
    private const byte SslVersion = 0x21;
    private const byte SslCommonName = 0x22;
    private const byte SslCipher = 0x23;
    private const byte SslSignatureAlgorithm = 0x24;
    private const byte SslKeyAlgorithm = 0x25;
    private const byte Gcp = 0xE0;
    private const byte Aws = 0xEA;
    private const byte Azure = 0xEE;
    private const byte AwsVpcEndpointId = 0x01;
    private const byte AzurePrivateLinkId = 0x01;

    /// <summary>
    /// Checks the structure of the TLVs between <paramref name="start"/> and <paramref name="end"/> (header offsets), as
    /// far as <paramref name="received"/> goes: every length that has arrived must fit, and the known types must have
    /// their sizes. Returns the fault, or <see langword="null"/> when nothing so far is wrong.
    /// </summary>
    public static string? Check(ReadOnlySpan<byte> received, int start, int end) => Walk(received, start, end, inSsl: false);

    private static string? Walk(ReadOnlySpan<byte> received, int start, int end, bool inSsl)
    {
        var crcs = 0;
        for (var position = start; position < end;)
        {
            if (end - position < TlvHeaderBytes)
            {
                // Decided by the lengths alone: these bytes can never hold a TLV, whatever they turn out to be.
                return inSsl
                    ? $"v2: {end - position} byte(s) left at the end of the SSL TLV, too few for a sub-TLV"
                    : $"v2: {end - position} byte(s) left after the last TLV, too few for a TLV";
            }

            if (received.Length < position + TlvHeaderBytes)
            {
                return null;
            }

            var type = received[position];
            int length = BinaryPrimitives.ReadUInt16BigEndian(received[(position + 1)..]);
            var valueStart = position + TlvHeaderBytes;
            if (length > end - valueStart)
            {
                return inSsl
                    ? $"v2: SSL sub-TLV 0x{type:X2} of {length} bytes runs past the end of the SSL TLV"
                    : $"v2: TLV 0x{type:X2} of {length} bytes runs past the end of the header";
            }

            var valueSoFar = received[valueStart..Math.Min(valueStart + length, received.Length)];
            if (!inSsl && CheckTyped(type, length, valueSoFar, received, valueStart, ref crcs) is { } fault)
            {
                return fault;
            }

            position = valueStart + length;
        }

        return null;
    }

    private static string? CheckTyped(byte type, int length, ReadOnlySpan<byte> valueSoFar, ReadOnlySpan<byte> received, int valueStart, ref int crcs)
    {
        switch (type)
        {
            case Crc32c when length != 4:
                return $"v2: CRC32C TLV of {length} bytes instead of 4";
            case Crc32c when ++crcs > 1:
                // Each would have been computed with only its own bytes zeroed: two cannot both be right.
                return "v2: more than one CRC32C TLV";
            case UniqueId when length > MaxUniqueIdBytes:
                return $"v2: UNIQUE_ID TLV of {length} bytes, over {MaxUniqueIdBytes}";
            case Ssl when length < SslFixedBytes:
                return $"v2: SSL TLV of {length} bytes, too short for its client and verify fields";
            case Ssl:
                return Walk(received[..Math.Min(received.Length, valueStart + length)], valueStart + SslFixedBytes, valueStart + length, inSsl: true);
            case Gcp when length != 8:
                return $"v2: GCP PSC connection id TLV of {length} bytes instead of 8";
            case Azure when valueSoFar is [AzurePrivateLinkId, ..] && length != 5:
                return $"v2: Azure private link id TLV of {length} bytes instead of 5";
            default:
                return null;
        }
    }

    /// <summary>
    /// Reads every TLV of a whole header that <see cref="Check"/> passed. The values are slices of
    /// <paramref name="header"/>. Returns the fault of a value that cannot be read (text that is not UTF-8), or
    /// <see langword="null"/>.
    /// </summary>
    public static string? Read(byte[] header, int start, out ProxyTlvValues values)
    {
        values = new ProxyTlvValues();
        var all = new List<ProxyTlv>();
        values.All = all;
        for (var position = start; position < header.Length;)
        {
            var type = header[position];
            int length = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(position + 1));
            var value = header.AsMemory(position + TlvHeaderBytes, length);
            all.Add(new ProxyTlv(type, value));
            if (ReadTyped(type, value, position + TlvHeaderBytes, values) is { } fault)
            {
                return fault;
            }

            position += TlvHeaderBytes + length;
        }

        return null;
    }

    // The first of each type is the one a typed property shows; later ones stay in the list, unread.
    private static string? ReadTyped(byte type, ReadOnlyMemory<byte> value, int valueOffset, ProxyTlvValues values)
    {
        string? fault = null;
        var span = value.Span;
        switch (type)
        {
            case Alpn when values.Alpn is null:
                values.Alpn = ReadText(span, "ALPN", out fault);
                break;
            case Authority when values.Authority is null:
                values.Authority = ReadText(span, "AUTHORITY", out fault);
                break;
            case Crc32c:
                values.CrcOffset = valueOffset;
                break;
            case UniqueId when values.UniqueId is null:
                values.UniqueId = value;
                break;
            case Ssl when values.Ssl is null:
                values.Ssl = ReadSsl(value, out fault);
                break;
            case Aws when values.AwsVpcEndpointId is null && span is [AwsVpcEndpointId, .. var id]:
                values.AwsVpcEndpointId = Ascii.IsValid(id) ? Encoding.ASCII.GetString(id) : null;
                fault = values.AwsVpcEndpointId is null ? $"v2: AWS VPC endpoint id {ProxyHeaderParser.Quote(id)} is not ASCII" : null;
                break;
            case Azure when values.AzurePrivateLinkId is null && span is [AzurePrivateLinkId, .. var linkId]:
                values.AzurePrivateLinkId = BinaryPrimitives.ReadUInt32LittleEndian(linkId);
                break;
            case Gcp when values.GcpPscConnectionId is null:
                values.GcpPscConnectionId = BinaryPrimitives.ReadUInt64BigEndian(span);
                break;
            default:
                break; // NOOP, NETNS, duplicates and types this reader does not know: kept raw in the list
        }

        return fault;
    }

    private static ProxySslInfo? ReadSsl(ReadOnlyMemory<byte> value, out string? fault)
    {
        fault = null;
        var span = value.Span;
        var subTlvs = new List<ProxyTlv>();
        string? version = null, commonName = null, cipher = null, signatureAlgorithm = null, keyAlgorithm = null;
        for (var position = SslFixedBytes; position < span.Length && fault is null;)
        {
            var type = span[position];
            int length = BinaryPrimitives.ReadUInt16BigEndian(span[(position + 1)..]);
            var text = span.Slice(position + TlvHeaderBytes, length);
            subTlvs.Add(new ProxyTlv(type, value.Slice(position + TlvHeaderBytes, length)));
            position += TlvHeaderBytes + length;

            switch (type)
            {
                case SslVersion when version is null:
                    version = ReadText(text, "SSL version", out fault);
                    break;
                case SslCommonName when commonName is null:
                    commonName = ReadText(text, "SSL common name", out fault);
                    break;
                case SslCipher when cipher is null:
                    cipher = ReadText(text, "SSL cipher", out fault);
                    break;
                case SslSignatureAlgorithm when signatureAlgorithm is null:
                    signatureAlgorithm = ReadText(text, "SSL signature algorithm", out fault);
                    break;
                case SslKeyAlgorithm when keyAlgorithm is null:
                    keyAlgorithm = ReadText(text, "SSL key algorithm", out fault);
                    break;
                default:
                    break;
            }
        }

        return fault is not null ? null
            : new ProxySslInfo(span[0], BinaryPrimitives.ReadUInt32BigEndian(span[1..]), subTlvs, version, commonName, cipher, signatureAlgorithm, keyAlgorithm);
    }

    private static string? ReadText(ReadOnlySpan<byte> value, string what, out string? fault)
    {
        // Strict: a name compared or logged downstream must not hide bytes behind replacement characters.
        var valid = Utf8.IsValid(value);
        fault = valid ? null : $"v2: {what} {ProxyHeaderParser.Quote(value)} is not UTF-8";
        return valid ? Encoding.UTF8.GetString(value) : null;
    }
}

/// <summary>What <see cref="ProxyTlvReader.Read"/> found in a header's TLVs.</summary>
internal sealed class ProxyTlvValues
{
    public IReadOnlyList<ProxyTlv> All { get; set; } = [];

    /// <summary>Where the CRC32C TLV's value sits in the header; -1 without one.</summary>
    public int CrcOffset { get; set; } = -1;

    public string? Alpn { get; set; }

    public string? Authority { get; set; }

    public ReadOnlyMemory<byte>? UniqueId { get; set; }

    public ProxySslInfo? Ssl { get; set; }

    public string? AwsVpcEndpointId { get; set; }

    public uint? AzurePrivateLinkId { get; set; }

    public ulong? GcpPscConnectionId { get; set; }
}
