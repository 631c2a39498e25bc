using System.Buffers;
using System.Text;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>What one call of <see cref="ProxyHeaderParser.Parse"/> returned.</summary>
internal readonly record struct ParseResult(ProxyParseStatus Status, ProxyHeader? Header, long Consumed, string? Reason, string? Detail);

/// <summary>Calls the parser on bytes as a connection could deliver them: whole, cut short, or in many segments.</summary>
internal static class ProxyParsing
{
    public const int MaxHeaderBytes = 4096;

    public static ParseResult Parse(ReadOnlySequence<byte> input, int maxHeaderBytes = MaxHeaderBytes, bool verifyCrc32c = true)
    {
        var status = ProxyHeaderParser.Parse(input, maxHeaderBytes, verifyCrc32c, out var header, out var consumed, out var reason, out var detail);
        return new ParseResult(status, header, consumed, reason, detail);
    }

    public static ParseResult Parse(byte[] input, int maxHeaderBytes = MaxHeaderBytes, bool verifyCrc32c = true) =>
        Parse(new ReadOnlySequence<byte>(input), maxHeaderBytes, verifyCrc32c);

    public static ParseResult Parse(string ascii) => Parse(Encoding.Latin1.GetBytes(ascii));

    /// <summary>The bytes as a sequence of <paramref name="segmentSize"/>-byte segments, as a pipe could hold them.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, int segmentSize = 1)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(bytes.AsMemory(0, Math.Min(segmentSize, bytes.Length)), 0);
        var last = first;
        for (var offset = segmentSize; offset < bytes.Length; offset += segmentSize)
        {
            last = last.Append(bytes.AsMemory(offset, Math.Min(segmentSize, bytes.Length - offset)));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>
    /// The shortest prefix of <paramref name="bytes"/> the parser does not call incomplete, after checking that every
    /// shorter one is: the point where it decided.
    /// </summary>
    public static (int Length, ParseResult Result) FirstDecision(byte[] bytes, int maxHeaderBytes = MaxHeaderBytes, bool verifyCrc32c = true)
    {
        for (var length = 0; length <= bytes.Length; length++)
        {
            var result = Parse(bytes[..length], maxHeaderBytes, verifyCrc32c);
            if (result.Status != ProxyParseStatus.Incomplete)
            {
                return (length, result);
            }

            Assert.True(result.Header is null && result.Consumed == 0 && result.Reason is null && result.Detail is null);
        }

        return (-1, default);
    }

    /// <summary>Everything a header says, as one string: two headers that read the same describe the same.</summary>
    public static string Describe(IProxyProtocolFeature header)
    {
        var text = new StringBuilder()
            .Append($"v{header.Version} {header.Command} {header.SourceEndPoint?.ToString() ?? "-"} -> {header.DestinationEndPoint?.ToString() ?? "-"}")
            .Append($" alpn={header.Alpn} authority={header.Authority} id={Hex(header.UniqueId)} aws={header.AwsVpcEndpointId}")
            .Append($" azure={header.AzurePrivateLinkId} gcp={header.GcpPscConnectionId}");
        if (header.Ssl is { } ssl)
        {
            text.Append($" ssl={ssl.Client}/{ssl.Verify}/{ssl.Version}/{ssl.CommonName}/{ssl.Cipher}/{ssl.SignatureAlgorithm}/{ssl.KeyAlgorithm}")
                .Append(string.Concat(ssl.SubTlvs.Select(t => $" sub:{t.Type:X2}={Hex(t.Value)}")));
        }

        return text.Append(string.Concat(header.Tlvs.Select(t => $" tlv:{t.Type:X2}={Hex(t.Value)}"))).ToString();
    }

    public static string Hex(ReadOnlyMemory<byte>? bytes) => bytes is { } b ? Convert.ToHexString(b.Span) : "-";

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
