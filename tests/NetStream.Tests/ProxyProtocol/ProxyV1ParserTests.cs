using System.Net;
using System.Text;
using NetStream.Transport.ProxyProtocol;
using static NetStream.Tests.ProxyProtocol.ProxyParsing;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>The version 1 text line: what is accepted, and where a bad line is refused.</summary>
public sealed class ProxyV1ParserTests
{
    [Fact]
    public void A_TCP4_line_names_the_client_and_the_address_it_connected_to()
    {
        var result = Parse("PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\n");

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(43, result.Consumed);
        var header = Assert.IsType<ProxyHeader>(result.Header);
        Assert.Equal(1, header.Version);
        Assert.Equal(ProxyCommand.Proxy, header.Command);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("192.168.0.1"), 56324), header.SourceEndPoint);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 443), header.DestinationEndPoint);
        Assert.Empty(header.Tlvs);
        Assert.Null(header.ProxyEndPoint);
        Assert.Null(header.Alpn);
        Assert.Null(header.Ssl);
        Assert.Null(header.UniqueId);
    }

    [Theory]
    [InlineData("2001:db8::1", "2001:db8::2")]
    [InlineData("::1", "::")]
    [InlineData("::ffff:10.0.0.1", "fe80::1")]
    [InlineData("2001:0db8:0000:0000:0000:0000:0000:0001", "1:2:3:4:5:6:7:8")]
    public void A_TCP6_line_names_IPv6_endpoints(string source, string destination)
    {
        var result = Parse($"PROXY TCP6 {source} {destination} 65535 0\r\n");

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(source), 65535), result.Header!.SourceEndPoint);
        Assert.Equal(new IPEndPoint(IPAddress.Parse(destination), 0), result.Header.DestinationEndPoint);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN 192.168.0.1 10.0.0.2 56324 443\r\n")]
    [InlineData("PROXY UNKNOWN  anything,  even\tdouble spaces and \x01 bytes\r\n")]
    public void An_UNKNOWN_line_keeps_the_real_endpoints_whatever_follows_the_word(string line)
    {
        var result = Parse(line);

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(line.Length, result.Consumed);
        Assert.Equal(1, result.Header!.Version);
        Assert.Equal(ProxyCommand.Local, result.Header.Command);
        Assert.Null(result.Header.SourceEndPoint);
        Assert.Null(result.Header.DestinationEndPoint);
    }

    [Fact]
    public void A_line_of_exactly_107_bytes_is_accepted_and_one_of_108_is_too_long_before_its_end()
    {
        var longest = "PROXY UNKNOWN " + new string('x', 107 - 16) + "\r\n";
        Assert.Equal(107, longest.Length);
        Assert.Equal(ProxyParseStatus.Complete, Parse(longest).Status);

        // The CR of a 108-byte line would be its 107th byte: the 106th, not a CR, already says the line cannot end in time.
        var tooLong = Encoding.ASCII.GetBytes("PROXY UNKNOWN " + new string('x', 108 - 16) + "\r\n");
        var (length, result) = FirstDecision(tooLong);
        Assert.Equal(106, length);
        Assert.Equal(ProxyParseStatus.Invalid, result.Status);
        Assert.Equal("proxy_too_long", result.Reason);
    }

    [Fact]
    public void A_TCP6_line_with_the_longest_address_forms_is_too_long()
    {
        const string Longest = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
        var line = Encoding.ASCII.GetBytes($"PROXY TCP6 {Longest} {Longest} 65535 65535\r\n");
        Assert.Equal(116, line.Length);

        var (length, result) = FirstDecision(line);

        Assert.Equal(106, length);
        Assert.Equal("proxy_too_long", result.Reason);
    }

    [Fact]
    public void A_line_without_CRLF_within_107_bytes_is_too_long_without_waiting_for_more()
    {
        var result = Parse("PROXY UNKNOWN " + new string('x', 200));

        Assert.Equal(ProxyParseStatus.Invalid, result.Status);
        Assert.Equal("proxy_too_long", result.Reason);
        Assert.Contains("107", result.Detail);
    }

    [Theory]
    // Spaces
    [InlineData("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 12, "two spaces")]
    [InlineData("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "two spaces")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", 30, "two spaces")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 31, "more than five fields")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 31, "more than five fields")]
    // Line ends
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 32, "carriage return without a line feed")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31, "line feed without a carriage return")]
    [InlineData("PROXY UNKNOWN\n", 14, "line feed without a carriage return")]
    [InlineData("PROXY UNKNOWN x\ry\r\n", 17, "carriage return without a line feed")]
    [InlineData("PROXY TCP4 1.2.3.4\r\n", 19, "ends after 2 of 5 fields")]
    [InlineData("PROXY TCP4\r\n", 11, "ends after 1 of 5 fields")]
    [InlineData("PROXY \r\n", 7, "empty field")]
    // Protocol words
    [InlineData("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10, "unknown protocol 'TCP5'")]
    [InlineData("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "unknown protocol 'tcp4'")]
    [InlineData("PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n", 10, "unknown protocol 'TCP'")]
    [InlineData("PROXY UNKNOWNX\r\n", 14, "unknown protocol")]
    [InlineData("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8, "unknown protocol")]
    // Families
    [InlineData("PROXY TCP4 ::1 ::1 1 2\r\n", 12, "IPv6 address after TCP4")]
    [InlineData("PROXY TCP4 2001:db8::1 ::1 1 2\r\n", 15, "IPv6 address after TCP4")]
    [InlineData("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 13, "IPv4 address after TCP6")]
    [InlineData("PROXY TCP6 1234 ::1 1 2\r\n", 16, "not an IPv6 address '1234'")]
    // IPv4
    [InlineData("PROXY TCP4 010.0.0.1 5.6.7.8 1 2\r\n", 13, "leading zero in address '010.0.0.1'")]
    [InlineData("PROXY TCP4 127.1 5.6.7.8 1 2\r\n", 17, "fewer than four octets in address '127.1'")]
    [InlineData("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 19, "more than four octets")]
    [InlineData("PROXY TCP4 256.0.0.1 5.6.7.8 1 2\r\n", 14, "octet over 255")]
    [InlineData("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", 14, "empty octet")]
    [InlineData("PROXY TCP4 1.2.3. 5.6.7.8 1 2\r\n", 18, "empty octet")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", 27, "not an IPv4 address")]
    [InlineData("PROXY TCP4 0x7f.0.0.1 5.6.7.8 1 2\r\n", 13, "not an IPv4 address '0x7f.0.0.1'")]
    // IPv6
    [InlineData("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 19, "zone id in address 'fe80::1%eth0'")]
    [InlineData("PROXY TCP6 1::2::3 ::1 1 2\r\n", 17, "not an IPv6 address")]
    [InlineData("PROXY TCP6 1:::2 ::1 1 2\r\n", 15, "not an IPv6 address")]
    [InlineData("PROXY TCP6 12345:: ::1 1 2\r\n", 16, "not an IPv6 address")]
    [InlineData("PROXY TCP6 [::1] ::1 1 2\r\n", 12, "not an IPv6 address")]
    [InlineData("PROXY TCP6 ::ffff:010.0.0.1 ::1 1 2\r\n", 22, "leading zero")]
    [InlineData("PROXY TCP6 1.2::3 ::1 1 2\r\n", 13, "IPv4 address after TCP6")]
    [InlineData("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 29, "not an IPv6 address")]
    [InlineData("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", 25, "not an IPv6 address")]
    // Ports
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", 29, "leading zero in port '080'")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 32, "port over 65535 '65536'")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 34, "port over 65535")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", 30, "not a port")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", 31, "leading zero in port")]
    public void A_malformed_line_is_refused_at_the_byte_that_breaks_it(string line, int decidedAt, string detail)
    {
        var (length, early) = FirstDecision(Encoding.Latin1.GetBytes(line));
        var whole = Parse(line);

        Assert.Equal(decidedAt, length);
        Assert.Equal(ProxyParseStatus.Invalid, early.Status);
        Assert.Equal("proxy_malformed", early.Reason);
        Assert.Equal(ProxyParseStatus.Invalid, whole.Status);
        Assert.Equal("proxy_malformed", whole.Reason);

        // With the whole line in, the detail quotes the whole field, not only what had come when it broke.
        Assert.StartsWith("v1: ", whole.Detail);
        Assert.Contains(detail, whole.Detail);
    }

    [Fact]
    public void A_detail_quotes_what_the_peer_sent_without_letting_it_break_the_log_line()
    {
        var result = Parse("PROXY TCP4 1.2.3.4 5.6.7.8 1\x1b[31m 2\r\n");

        Assert.Equal(ProxyParseStatus.Invalid, result.Status);
        Assert.Equal(@"v1: not a port '1\x1B[31m'", result.Detail);
    }
}
