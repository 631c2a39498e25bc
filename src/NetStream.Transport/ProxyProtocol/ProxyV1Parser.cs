using System.Net;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// The version 1 line: <c>PROXY TCP4|TCP6 src dst sport dport\r\n</c> or <c>PROXY UNKNOWN[anything]\r\n</c>. Strict, as the
/// specification asks of receivers: one space between fields, canonical addresses and ports. Each field is checked as
/// its bytes arrive, so that a line that can no longer be valid is refused at the byte that broke it, not at its end.
/// </summary>
internal static class ProxyV1Parser
{
    /// <summary>The longest line the specification allows, CRLF included.</summary>
    public const int MaxLineBytes = 107;

    private const int ProtocolStart = 6; // after "PROXY "
    private const int FieldCount = 5; // protocol, source address, destination address, source port, destination port

    /// <summary>As <see cref="ProxyHeaderParser.Parse"/>, for the bytes received so far (at most <see cref="MaxLineBytes"/>) that begin with "PROXY ".</summary>
    public static ProxyParseOutcome Parse(ReadOnlySpan<byte> received)
    {
        Span<int> starts = stackalloc int[FieldCount];
        Span<int> ends = stackalloc int[FieldCount];
        var field = 0;
        starts[0] = ProtocolStart;
        var unknown = false; // past "UNKNOWN ": the rest of the line is the sender's, up to CRLF

        for (var i = ProtocolStart; i < received.Length; i++)
        {
            var fault = received[i] switch
            {
                (byte)'\n' => "v1: line feed without a carriage return",
                (byte)'\r' => null,
                _ when unknown => null, // anything goes up to CRLF, double spaces and all
                (byte)' ' => EndField(received, i, ref field, ref unknown, starts, ends),
                _ => CheckField(received, field, starts, i + 1, whole: false),
            };

            if (fault is not null)
            {
                return ProxyParseOutcome.Malformed(fault);
            }

            if (received[i] == '\r')
            {
                return EndLine(received, i, field, unknown, starts, ends);
            }

            // The CR must come by byte 106 for the LF to fit in 107.
            if (i >= MaxLineBytes - 2)
            {
                return ProxyParseOutcome.TooLong($"v1: no CRLF within {MaxLineBytes} bytes");
            }
        }

        return ProxyParseOutcome.Incomplete;
    }

    /// <summary>A space at <paramref name="i"/>: the field before it must be whole, and another must follow.</summary>
    private static string? EndField(ReadOnlySpan<byte> received, int i, ref int field, ref bool unknown, Span<int> starts, Span<int> ends)
    {
        if (i == starts[field])
        {
            return "v1: two spaces in a row";
        }

        if (CheckField(received, field, starts, i, whole: true) is { } fault)
        {
            return fault;
        }

        ends[field] = i;
        if (field == 0 && IsUnknown(received, starts[0], i))
        {
            unknown = true;
            return null;
        }

        if (field == FieldCount - 1)
        {
            return "v1: more than five fields";
        }

        starts[++field] = i + 1;
        return null;
    }

    /// <summary>A CR at <paramref name="i"/>: the line must be able to end here, and the LF must follow.</summary>
    private static ProxyParseOutcome EndLine(ReadOnlySpan<byte> received, int i, int field, bool unknown, Span<int> starts, Span<int> ends)
    {
        if (!unknown)
        {
            var fault = i == starts[field] ? "v1: an empty field at the end of the line"
                : CheckField(received, field, starts, i, whole: true)
                ?? (field == FieldCount - 1 || IsUnknown(received, starts[0], i) ? null : $"v1: the line ends after {field + 1} of {FieldCount} fields");
            if (fault is not null)
            {
                return ProxyParseOutcome.Malformed(fault);
            }

            ends[field] = i;
        }

        return i + 1 == received.Length ? ProxyParseOutcome.Incomplete
            : received[i + 1] != '\n' ? ProxyParseOutcome.Malformed("v1: carriage return without a line feed")
            : ProxyParseOutcome.Complete(Build(received, starts, ends), i + 2);
    }

    private static bool IsUnknown(ReadOnlySpan<byte> received, int start, int end) => received[start..end].SequenceEqual("UNKNOWN"u8);

    /// <summary>
    /// Checks field <paramref name="field"/>, whose bytes so far end at <paramref name="end"/>: as a whole field, or as
    /// the beginning of one. Returns the fault for the log, or <see langword="null"/>.
    /// </summary>
    private static string? CheckField(ReadOnlySpan<byte> received, int field, ReadOnlySpan<int> starts, int end, bool whole)
    {
        var token = received[starts[field]..end];
        var fault = field switch
        {
            0 => ProxyV1Tokens.CheckProtocol(token, whole),
            1 or 2 when received[starts[0] + 3] == '4' => ProxyV1Tokens.CheckIPv4(token, whole),
            1 or 2 => ProxyV1Tokens.CheckIPv6(token, whole),
            _ => ProxyV1Tokens.CheckPort(token, whole),
        };

        if (fault is null)
        {
            return null;
        }

        // Quote the whole field as far as it has arrived, not only the byte that broke it: "010.0.0.1", not "01".
        var shown = received[starts[field]..];
        var delimiter = shown.IndexOfAny(" \r\n"u8);
        shown = delimiter < 0 ? shown : shown[..delimiter];

        // 2001:db8::1 after TCP4 breaks as an octet over 255: say what the sender more likely did.
        fault = field is 1 or 2 && received[starts[0] + 3] == '4' && shown.Contains((byte)':') ? "IPv6 address after TCP4" : fault;
        return $"v1: {fault} {ProxyHeaderParser.Quote(shown)}";
    }

    private static ProxyHeader Build(ReadOnlySpan<byte> line, ReadOnlySpan<int> starts, ReadOnlySpan<int> ends)
    {
        if (IsUnknown(line, starts[0], ends[0]))
        {
            // The sender could not name the client: the connection's own endpoints stand.
            return new ProxyHeader { Version = 1, Command = ProxyCommand.Local };
        }

        return new ProxyHeader
        {
            Version = 1,
            Command = ProxyCommand.Proxy,
            SourceEndPoint = new IPEndPoint(IPAddress.Parse(line[starts[1]..ends[1]]), ProxyV1Tokens.ParsePort(line[starts[3]..ends[3]])),
            DestinationEndPoint = new IPEndPoint(IPAddress.Parse(line[starts[2]..ends[2]]), ProxyV1Tokens.ParsePort(line[starts[4]..ends[4]])),
        };
    }
}
