using System.Net;
using System.Net.Sockets;
using System.Text;
using NetStream.Transport.ProxyProtocol;
using static NetStream.Tests.ProxyProtocol.ProxyParsing;
using static NetStream.Tests.ProxyProtocol.ProxyV2Builder;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// The parser's contract with the hook that feeds it: which version, or none, the first bytes say; how much a header
/// consumes; and that a header split anywhere, across reads or segments, parses the same.
/// </summary>
public sealed class ProxyHeaderParserTests
{
    private static readonly IPEndPoint Client4 = new(IPAddress.Parse("203.0.113.7"), 51234);
    private static readonly IPEndPoint Server4 = new(IPAddress.Parse("10.0.0.2"), 443);

    private static readonly Dictionary<string, byte[]> ValidHeaders = new()
    {
        ["v1 TCP4"] = Encoding.ASCII.GetBytes("PROXY TCP4 203.0.113.7 10.0.0.2 51234 443\r\n"),
        ["v1 TCP6"] = Encoding.ASCII.GetBytes("PROXY TCP6 2001:db8::7 ::ffff:10.0.0.2 40000 8443\r\n"),
        ["v1 UNKNOWN"] = Encoding.ASCII.GetBytes("PROXY UNKNOWN\r\n"),
        ["v1 UNKNOWN with text"] = Encoding.ASCII.GetBytes("PROXY UNKNOWN 1.2.3.4 whatever\r\n"),
        ["v2 INET"] = Proxy(Client4, Server4),
        ["v2 INET6 with TLVs and CRC"] = Proxy(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 1), new IPEndPoint(IPAddress.IPv6Loopback, 2),
            [Tlv(Alpn, "h2"), Tlv(Authority, "example.com"), SslTlv(7, 0, Tlv(SslVersion, "TLSv1.3"), Tlv(SslCommonName, "c"))], crc32c: true),
        ["v2 UNIX"] = Proxy(new UnixDomainSocketEndPoint("/run/a.sock"), new UnixDomainSocketEndPoint("/run/b.sock"), [Tlv(UniqueId, 1, 2)]),
        ["v2 LOCAL"] = Local(),
        ["v2 LOCAL with address and TLVs"] = Local([AwsVpcEndpointTlv("vpce-1"), GcpPscTlv(5), AzurePrivateLinkTlv(6)], crc32c: true, Client4, Server4),
    };

    public static TheoryData<string> ValidHeaderNames => [.. ValidHeaders.Keys];

    [Fact]
    public void No_bytes_yet_is_incomplete() =>
        Assert.Equal(ProxyParseStatus.Incomplete, Parse(System.Buffers.ReadOnlySequence<byte>.Empty).Status);

    [Theory]
    [InlineData("P")]
    [InlineData("PROX")]
    [InlineData("PROXY")]
    [InlineData("PROXY ")]
    [InlineData("PROXY TCP")]
    [InlineData("\r")]
    [InlineData("\r\n\r\n\0")]
    [InlineData("\r\n\r\n\0\r\nQUIT")]
    [InlineData("\r\n\r\n\0\r\nQUIT\n")]
    [InlineData("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00")]
    public void Bytes_that_can_still_begin_a_header_are_incomplete(string start) =>
        Assert.Equal(ProxyParseStatus.Incomplete, Parse(start).Status);

    [Theory]
    [InlineData("G")]
    [InlineData("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")]
    [InlineData("PO")]
    [InlineData("POST / HTTP/1.1\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    [InlineData("PROXY\r\n")]
    [InlineData("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")] // a TLS ClientHello
    [InlineData("\r\nGET / HTTP/1.1\r\n")]
    [InlineData("\0")]
    public void Bytes_that_begin_no_header_are_not_proxy_at_once(string start)
    {
        var result = Parse(start);

        Assert.Equal(ProxyParseStatus.NotProxy, result.Status);
        Assert.Null(result.Header);
        Assert.Equal(0, result.Consumed);
        Assert.Null(result.Reason);
    }

    [Fact]
    public void A_TLS_ClientHello_and_an_HTTP_request_are_not_proxy_from_their_first_byte()
    {
        Assert.Equal((1, ProxyParseStatus.NotProxy), Decided(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\n\r\n")));
        Assert.Equal((1, ProxyParseStatus.NotProxy), Decided([0x16, 0x03, 0x01, 0x00, 0xA5, 0x01]));
        Assert.Equal((2, ProxyParseStatus.NotProxy), Decided(Encoding.ASCII.GetBytes("POST /")));

        static (int, ProxyParseStatus) Decided(byte[] bytes)
        {
            var (length, result) = FirstDecision(bytes);
            return (length, result.Status);
        }
    }

    [Fact]
    public void A_v2_signature_with_one_byte_wrong_after_a_valid_prefix_is_not_proxy_at_that_byte()
    {
        for (var i = 0; i < 12; i++)
        {
            var bytes = Proxy(Client4, Server4);
            bytes[i] ^= 0x20;

            var (length, result) = FirstDecision(bytes);

            Assert.Equal(i + 1, length);
            Assert.Equal(ProxyParseStatus.NotProxy, result.Status);
        }
    }

    [Theory]
    [MemberData(nameof(ValidHeaderNames))]
    public void Every_valid_header_is_incomplete_until_its_last_byte_then_complete(string name)
    {
        var bytes = ValidHeaders[name];
        var (length, result) = FirstDecision(bytes);

        Assert.Equal(bytes.Length, length);
        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(bytes.Length, result.Consumed);
        Assert.Null(result.Reason);
        Assert.Null(result.Detail);
    }

    [Theory]
    [MemberData(nameof(ValidHeaderNames))]
    public void A_header_split_into_single_byte_segments_parses_the_same_at_every_length(string name)
    {
        var bytes = ValidHeaders[name];
        var whole = Describe(Parse(bytes).Header!);

        for (var length = 0; length < bytes.Length; length++)
        {
            Assert.Equal(ProxyParseStatus.Incomplete, Parse(Segmented(bytes[..length])).Status);
        }

        foreach (var segmentSize in new[] { 1, 2, 3, 7, 13 })
        {
            var result = Parse(Segmented(bytes, segmentSize));
            Assert.Equal(ProxyParseStatus.Complete, result.Status);
            Assert.Equal(bytes.Length, result.Consumed);
            Assert.Equal(whole, Describe(result.Header!));
        }
    }

    [Theory]
    [MemberData(nameof(ValidHeaderNames))]
    public void A_header_followed_by_data_and_a_second_header_consumes_only_the_first(string name)
    {
        var first = ValidHeaders[name];
        byte[] input = [.. first, .. "GET / HTTP/1.1\r\n"u8, .. ValidHeaders["v2 INET"], .. ValidHeaders["v1 TCP4"]];

        var result = Parse(input);
        var segmented = Parse(Segmented(input, 5));

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(first.Length, result.Consumed);
        Assert.Equal(Describe(Parse(first).Header!), Describe(result.Header!));
        Assert.Equal(first.Length, segmented.Consumed);
    }

    [Fact]
    public void A_header_followed_at_once_by_a_TLS_ClientHello_leaves_the_ClientHello_to_the_application()
    {
        byte[] input = [.. ValidHeaders["v2 INET"], 0x16, 0x03, 0x01];

        var result = Parse(input);

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(28, result.Consumed);
    }

    [Fact]
    public void Every_single_bit_flip_of_a_header_with_a_CRC_is_refused_unless_it_removes_the_checksum()
    {
        var original = ValidHeaders["v2 INET6 with TLVs and CRC"];
        var crcType = 16 + 36; // the builder puts the CRC32C TLV first, after the 36-byte address block
        var lengthField = new[] { 14, 15 };
        var seen = new Dictionary<string, int>();

        for (var bit = 0; bit < original.Length * 8; bit++)
        {
            var bytes = original.ToArray();
            bytes[bit / 8] ^= (byte)(1 << (bit % 8));
            var result = Parse(bytes);
            var outcome = result.Status == ProxyParseStatus.Invalid ? result.Reason! : result.Status.ToString();
            seen[outcome] = seen.GetValueOrDefault(outcome) + 1;

            // The address block and the checksum itself: only the checksum can tell such a flip.
            if (bit / 8 is >= 16 and < 52 || bit / 8 is >= 52 + 3 and < 52 + 7)
            {
                Assert.Equal("proxy_crc", result.Reason);
            }

            switch (result.Status)
            {
                case ProxyParseStatus.Invalid or ProxyParseStatus.NotProxy:
                    break;
                case ProxyParseStatus.Incomplete:
                    // A longer length asks for bytes that never came: the hook's timeout refuses it.
                    Assert.Contains(bit / 8, lengthField);
                    break;
                default:
                    // The CRC is optional: a flip that turns its type into another leaves a header without one.
                    Assert.Equal(crcType, bit / 8);
                    Assert.DoesNotContain(result.Header!.Tlvs, t => t.Type == Crc32c);
                    break;
            }
        }

        Assert.True(seen["proxy_crc"] > original.Length * 8 / 2, string.Join(", ", seen));
        Assert.Equal(12 * 8, seen["NotProxy"]);
    }

    [Fact]
    public void CRC32C_of_the_standard_check_string_is_E3069283()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0xE3069283u, ReferenceCrc32C("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void CRC32C_taken_in_pieces_equals_CRC32C_taken_whole_and_the_bitwise_definition()
    {
        var data = new byte[1000];
        new Random(42).NextBytes(data);

        var pieces = Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Start, data.AsSpan(0, 333)), data.AsSpan(333)));

        Assert.Equal(Crc32C.Compute(data), pieces);
        Assert.Equal(ReferenceCrc32C(data), pieces);
        // RFC 3720 B.4: 32 bytes of zeros.
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
    }
}
