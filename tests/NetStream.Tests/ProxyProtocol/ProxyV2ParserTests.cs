using System.Net;
using System.Net.Sockets;
using NetStream.Transport.ProxyProtocol;
using static NetStream.Tests.ProxyProtocol.ProxyParsing;
using static NetStream.Tests.ProxyProtocol.ProxyV2Builder;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>The version 2 binary header's fixed part and address block: what is accepted, and where a bad one is refused.</summary>
public sealed class ProxyV2ParserTests
{
    private static readonly IPEndPoint Client4 = new(IPAddress.Parse("203.0.113.7"), 51234);
    private static readonly IPEndPoint Server4 = new(IPAddress.Parse("10.0.0.2"), 443);
    private static readonly IPEndPoint Client6 = new(IPAddress.Parse("2001:db8::7"), 40000);
    private static readonly IPEndPoint Server6 = new(IPAddress.Parse("2001:db8::1:2"), 8443);

    [Fact]
    public void A_PROXY_header_over_TCP_and_IPv4_names_the_client_and_the_address_it_connected_to()
    {
        var bytes = Proxy(Client4, Server4);
        var result = Parse(bytes);

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(28, result.Consumed);
        var header = result.Header!;
        Assert.Equal(2, header.Version);
        Assert.Equal(ProxyCommand.Proxy, header.Command);
        Assert.Equal(Client4, header.SourceEndPoint);
        Assert.Equal(Server4, header.DestinationEndPoint);
        Assert.Empty(header.Tlvs);
        Assert.Null(header.ProxyEndPoint);
    }

    [Fact]
    public void A_PROXY_header_over_TCP_and_IPv6_names_IPv6_endpoints()
    {
        var result = Parse(Proxy(Client6, Server6));

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(16 + 36, result.Consumed);
        Assert.Equal(Client6, result.Header!.SourceEndPoint);
        Assert.Equal(Server6, result.Header.DestinationEndPoint);
    }

    [Fact]
    public void A_PROXY_header_over_Unix_sockets_names_the_paths_and_an_unnamed_socket_as_null()
    {
        var named = Parse(Proxy(new UnixDomainSocketEndPoint("/run/client.sock"), new UnixDomainSocketEndPoint("/run/app.sock")));

        Assert.Equal(ProxyParseStatus.Complete, named.Status);
        Assert.Equal(16 + 216, named.Consumed);
        Assert.Equal("/run/client.sock", Assert.IsType<UnixDomainSocketEndPoint>(named.Header!.SourceEndPoint).ToString());
        Assert.Equal("/run/app.sock", Assert.IsType<UnixDomainSocketEndPoint>(named.Header.DestinationEndPoint).ToString());

        var unnamed = Parse(Header(V2Proxy, 0x31, [.. new byte[108], .. UnixPath("/run/app.sock")]));
        Assert.Equal(ProxyParseStatus.Complete, unnamed.Status);
        Assert.Null(unnamed.Header!.SourceEndPoint);
        Assert.Equal("/run/app.sock", unnamed.Header.DestinationEndPoint!.ToString());
    }

    [Fact]
    public void A_Unix_path_that_fills_all_108_bytes_or_is_not_UTF8_is_malformed()
    {
        var full = Parse(Header(V2Proxy, 0x31, [.. Enumerable.Repeat((byte)'a', 108), .. UnixPath("/run/app.sock")]));
        Assert.Equal("proxy_malformed", full.Reason);
        Assert.Contains("fills all 108 bytes", full.Detail);

        var notUtf8 = Parse(Header(V2Proxy, 0x31, [.. UnixPath("/run/client.sock"), .. UnixPath("/run/\xff.sock").Select(b => b == 0xC3 ? (byte)0xFF : b)]));
        Assert.Equal("proxy_malformed", notUtf8.Reason);
        Assert.Contains("not UTF-8", notUtf8.Detail);
    }

    [Theory]
    [InlineData(0x12)] // UDP over IPv4
    [InlineData(0x11)]
    public void A_datagram_transport_is_accepted_like_a_stream(byte familyAndTransport)
    {
        var (_, block) = AddressBlock(Client4, Server4);
        var result = Parse(Header(V2Proxy, familyAndTransport, block));

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(Client4, result.Header!.SourceEndPoint);
    }

    [Fact]
    public void A_PROXY_header_of_family_UNSPEC_is_accepted_without_endpoints_and_its_bytes_are_read_as_TLVs()
    {
        var result = Parse(Header(V2Proxy, 0x00, [], [Tlv(Authority, "example.com")]));

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(ProxyCommand.Proxy, result.Header!.Command);
        Assert.Null(result.Header.SourceEndPoint);
        Assert.Null(result.Header.DestinationEndPoint);
        Assert.Equal("example.com", result.Header.Authority);
    }

    [Fact]
    public void An_IPv4_address_block_with_an_UNSPEC_transport_is_skipped_as_the_specification_says()
    {
        var (_, block) = AddressBlock(Client4, Server4);
        var result = Parse(Header(V2Proxy, 0x10, block));

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Null(result.Header!.SourceEndPoint);
        Assert.Null(result.Header.DestinationEndPoint);
    }

    [Fact]
    public void A_LOCAL_header_without_an_address_block_keeps_the_real_endpoints()
    {
        var result = Parse(Local());

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(16, result.Consumed);
        Assert.Equal(2, result.Header!.Version);
        Assert.Equal(ProxyCommand.Local, result.Header.Command);
        Assert.Null(result.Header.SourceEndPoint);
        Assert.Null(result.Header.DestinationEndPoint);
        Assert.Empty(result.Header.Tlvs);
    }

    [Fact]
    public void A_LOCAL_header_with_an_address_block_and_TLVs_ignores_the_addresses_and_keeps_the_TLVs()
    {
        // AWS's load balancers send their health checks this way.
        var bytes = Local([AwsVpcEndpointTlv("vpce-08d2bf15fac5001c9"), Tlv(Noop, 0, 0)], crc32c: true, Client4, Server4);
        var result = Parse(bytes);

        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        Assert.Equal(bytes.Length, result.Consumed);
        Assert.Equal(ProxyCommand.Local, result.Header!.Command);
        Assert.Null(result.Header.SourceEndPoint);
        Assert.Null(result.Header.DestinationEndPoint);
        Assert.Equal([Crc32c, Aws, Noop], result.Header.Tlvs.Select(t => t.Type));
        Assert.Equal("vpce-08d2bf15fac5001c9", result.Header.AwsVpcEndpointId);
    }

    [Fact]
    public void A_LOCAL_header_has_its_CRC_checked_too()
    {
        var bytes = Local([Tlv(Noop, 1, 2, 3)], crc32c: true, Client4, Server4);
        bytes[^1] ^= 0x01;

        Assert.Equal("proxy_crc", Parse(bytes).Reason);
    }

    [Theory]
    [InlineData(0x11)]
    [InlineData(0x31)]
    [InlineData(0x00)]
    [InlineData(0xF1)]
    public void A_version_other_than_2_is_malformed_as_soon_as_byte_13_arrives(byte versionAndCommand)
    {
        var (length, result) = FirstDecision(Header(versionAndCommand, 0x11, new byte[12]));

        Assert.Equal(13, length);
        Assert.Equal("proxy_malformed", result.Reason);
        Assert.Contains("version", result.Detail);
    }

    [Theory]
    [InlineData(0x22)]
    [InlineData(0x23)]
    [InlineData(0x2F)]
    public void A_command_other_than_LOCAL_or_PROXY_is_malformed_as_soon_as_byte_13_arrives(byte versionAndCommand)
    {
        var (length, result) = FirstDecision(Header(versionAndCommand, 0x11, new byte[12]));

        Assert.Equal(13, length);
        Assert.Equal("proxy_malformed", result.Reason);
        Assert.Contains("command", result.Detail);
    }

    [Theory]
    [InlineData(0x41, "address family 4")]
    [InlineData(0xF1, "address family 15")]
    [InlineData(0x13, "transport 3")]
    [InlineData(0x1F, "transport 15")]
    public void An_unknown_family_or_transport_is_malformed_as_soon_as_byte_14_arrives(byte familyAndTransport, string detail)
    {
        var (length, result) = FirstDecision(Header(V2Proxy, familyAndTransport, new byte[12]));

        Assert.Equal(14, length);
        Assert.Equal("proxy_malformed", result.Reason);
        Assert.Contains(detail, result.Detail);
    }

    [Theory]
    [InlineData(V2Proxy, 0x11, 11)]
    [InlineData(V2Proxy, 0x21, 35)]
    [InlineData(V2Proxy, 0x31, 215)]
    [InlineData(V2Local, 0x11, 0)]
    [InlineData(V2Local, 0x21, 12)]
    public void A_length_shorter_than_the_address_block_is_malformed_as_soon_as_the_length_arrives(byte command, byte family, int length)
    {
        var (decidedAt, result) = FirstDecision(Header(command, family, new byte[length]));

        Assert.Equal(16, decidedAt);
        Assert.Equal("proxy_malformed", result.Reason);
        Assert.Contains("address block", result.Detail);
    }

    [Fact]
    public void A_length_over_the_limit_is_too_long_from_the_first_16_bytes_alone()
    {
        var bytes = Proxy(Client4, Server4, [Tlv(Noop, new byte[100])]);
        Assert.Equal(131, bytes.Length);

        Assert.Equal(ProxyParseStatus.Complete, Parse(bytes, maxHeaderBytes: 131).Status);

        var (decidedAt, result) = FirstDecision(bytes, maxHeaderBytes: 130);
        Assert.Equal(16, decidedAt);
        Assert.Equal("proxy_too_long", result.Reason);
        Assert.Contains("131 bytes", result.Detail);
        Assert.Contains("130", result.Detail);
    }

    [Fact]
    public void The_largest_length_is_read_as_unsigned()
    {
        var bytes = Header(V2Proxy, 0x11, new byte[12]);
        bytes[14] = 0xFF;
        bytes[15] = 0xFF;

        var result = Parse(bytes[..16], maxHeaderBytes: 1000);
        Assert.Equal("proxy_too_long", result.Reason);
        Assert.Contains("65551 bytes", result.Detail);

        Assert.Equal(ProxyParseStatus.Incomplete, Parse(bytes[..16], maxHeaderBytes: 16 + 65535).Status);
    }

    [Fact]
    public void A_limit_below_the_16_fixed_bytes_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Parse(Local(), maxHeaderBytes: 15));
    }
}
