using System.Buffers;
using System.Text;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>What <see cref="ProxyHeaderParser.Parse"/> made of the bytes a connection has sent so far.</summary>
internal enum ProxyParseStatus
{
    /// <summary>A whole, valid header: the bytes after it are the application's.</summary>
    Complete,

    /// <summary>Every byte so far can still begin a valid header: read more and parse again from the first byte.</summary>
    Incomplete,

    /// <summary>The bytes began a PROXY header that can no longer be valid.</summary>
    Invalid,

    /// <summary>The first bytes are neither the version 1 prefix nor the version 2 signature.</summary>
    NotProxy,
}

/// <summary>
/// Reads a PROXY protocol header, version 1 or 2 (HAProxy's <c>doc/proxy-protocol.txt</c>), from the first bytes of a
/// connection. A pure function of the bytes, called again with the longer input each time more arrives: it keeps no
/// state, so a header split anywhere, even one byte per read, parses the same.
/// </summary>
internal static class ProxyHeaderParser
{
    /// <summary>The <c>error.type</c> tag (of <c>netstream.connections.refused</c>) of a header that breaks the protocol's grammar.</summary>
    public const string Malformed = "proxy_malformed";

    /// <summary>The <c>error.type</c> tag (of <c>netstream.connections.refused</c>) of a header longer than allowed: a version 1 line past 107 bytes, a version 2 header past the limit.</summary>
    public const string TooLong = "proxy_too_long";

    /// <summary>The <c>error.type</c> tag (of <c>netstream.connections.refused</c>) of a version 2 header whose CRC32C TLV does not match its bytes.</summary>
    public const string CrcMismatch = "proxy_crc";

    /// <summary>The smallest <c>maxHeaderBytes</c>: a version 2 header's fixed part.</summary>
    public const int MinHeaderBytes = ProxyV2Parser.FixedBytes;

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    /// <summary>Parses the header at the start of <paramref name="input"/>.</summary>
    /// <param name="input">What the peer sent so far, from its first byte.</param>
    /// <param name="maxHeaderBytes">
    /// The longest version 2 header accepted, its 16 fixed bytes included; at least <see cref="MinHeaderBytes"/>. A
    /// version 1 line is at most 107 bytes whatever this says.
    /// </param>
    /// <param name="verifyCrc32c">Whether a version 2 CRC32C TLV must match the header (its length is checked either way).</param>
    /// <param name="header">The header when <see cref="ProxyParseStatus.Complete"/>; otherwise <see langword="null"/>.</param>
    /// <param name="consumed">The header's length in bytes when <see cref="ProxyParseStatus.Complete"/>; otherwise 0.</param>
    /// <param name="reason">
    /// When <see cref="ProxyParseStatus.Invalid"/>: <see cref="Malformed"/>, <see cref="TooLong"/> or <see cref="CrcMismatch"/>.
    /// </param>
    /// <param name="detail">When <see cref="ProxyParseStatus.Invalid"/>: a short sentence for the log.</param>
    public static ProxyParseStatus Parse(in ReadOnlySequence<byte> input, int maxHeaderBytes, bool verifyCrc32c,
        out ProxyHeader? header, out long consumed, out string? reason, out string? detail)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxHeaderBytes, MinHeaderBytes);

        var outcome = ParseOutcome(input, maxHeaderBytes, verifyCrc32c);
        header = outcome.Header;
        consumed = outcome.Consumed;
        reason = outcome.Reason;
        detail = outcome.Detail;
        return outcome.Status;
    }

    private static ProxyParseOutcome ParseOutcome(in ReadOnlySequence<byte> input, int maxHeaderBytes, bool verifyCrc32c)
    {
        if (input.IsEmpty)
        {
            return ProxyParseOutcome.Incomplete;
        }

        // The longer of the two openings, so that one look decides which it can still be.
        Span<byte> opening = stackalloc byte[ProxyV2Parser.Signature.Length];
        opening = opening[..(int)Math.Min(input.Length, opening.Length)];
        input.Slice(0, opening.Length).CopyTo(opening);

        if (StartsLike(opening, V1Prefix))
        {
            if (opening.Length < V1Prefix.Length)
            {
                return ProxyParseOutcome.Incomplete;
            }

            Span<byte> line = stackalloc byte[ProxyV1Parser.MaxLineBytes];
            line = line[..(int)Math.Min(input.Length, line.Length)];
            input.Slice(0, line.Length).CopyTo(line);
            return ProxyV1Parser.Parse(line);
        }

        if (StartsLike(opening, ProxyV2Parser.Signature))
        {
            return opening.Length < ProxyV2Parser.Signature.Length
                ? ProxyParseOutcome.Incomplete
                : ProxyV2Parser.Parse(input, maxHeaderBytes, verifyCrc32c);
        }

        // An HTTP request (even POST or the HTTP/2 preface "PRI", which share the P), a TLS ClientHello (0x16), or
        // anything else: decided on the first byte that differs, never by waiting for more.
        return ProxyParseOutcome.NotProxy;
    }

    /// <summary>Whether <paramref name="received"/> and <paramref name="expected"/> agree on every byte both have.</summary>
    private static bool StartsLike(ReadOnlySpan<byte> received, ReadOnlySpan<byte> expected)
    {
        var length = Math.Min(received.Length, expected.Length);
        return received[..length].SequenceEqual(expected[..length]);
    }

    /// <summary>
    /// Bytes a peer sent, quoted for a log line: printable ASCII as is, anything else as <c>\xNN</c>, so that a hostile
    /// header can neither break the line nor fill the log.
    /// </summary>
    internal static string Quote(ReadOnlySpan<byte> bytes)
    {
        const int MaxShown = 64;
        var text = new StringBuilder("'");
        foreach (var b in bytes[..Math.Min(bytes.Length, MaxShown)])
        {
            if (b is >= 0x20 and < 0x7F and not (byte)'\'' and not (byte)'\\')
            {
                text.Append((char)b);
            }
            else
            {
                text.Append("\\x").Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return text.Append(bytes.Length > MaxShown ? "...'" : "'").ToString();
    }
}

/// <summary>One parse's result, as the version parsers hand it back.</summary>
internal readonly record struct ProxyParseOutcome(ProxyParseStatus Status, ProxyHeader? Header, int Consumed, string? Reason, string? Detail)
{
    public static ProxyParseOutcome Incomplete => new(ProxyParseStatus.Incomplete, null, 0, null, null);

    public static ProxyParseOutcome NotProxy => new(ProxyParseStatus.NotProxy, null, 0, null, null);

    public static ProxyParseOutcome Complete(ProxyHeader header, int consumed) => new(ProxyParseStatus.Complete, header, consumed, null, null);

    public static ProxyParseOutcome Malformed(string detail) => Invalid(ProxyHeaderParser.Malformed, detail);

    public static ProxyParseOutcome TooLong(string detail) => Invalid(ProxyHeaderParser.TooLong, detail);

    public static ProxyParseOutcome CrcMismatch(string detail) => Invalid(ProxyHeaderParser.CrcMismatch, detail);

    private static ProxyParseOutcome Invalid(string reason, string detail) => new(ProxyParseStatus.Invalid, null, 0, reason, detail);
}
