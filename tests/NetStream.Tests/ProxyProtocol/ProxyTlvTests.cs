using System.Net;
using NetStream.Transport.ProxyProtocol;
using static NetStream.Tests.ProxyProtocol.ProxyParsing;
using static NetStream.Tests.ProxyProtocol.ProxyV2Builder;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>The TLVs after a version 2 address block: the typed ones, the raw list, and where a bad one is refused.</summary>
public sealed class ProxyTlvTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("203.0.113.7"), 51234);
    private static readonly IPEndPoint Server = new(IPAddress.Parse("10.0.0.2"), 443);

    private static ProxyHeader Complete(params ProxyTlv[] tlvs)
    {
        var result = Parse(Proxy(Client, Server, tlvs));
        Assert.Equal(ProxyParseStatus.Complete, result.Status);
        return result.Header!;
    }

    private static ParseResult Invalid(byte[] header, string reason = "proxy_malformed")
    {
        var result = Parse(header);
        Assert.Equal(ProxyParseStatus.Invalid, result.Status);
        Assert.Equal(reason, result.Reason);
        Assert.StartsWith("v2: ", result.Detail);
        return result;
    }

    [Fact]
    public void Every_typed_TLV_is_read_into_its_property_and_kept_raw_in_order()
    {
        var ssl = SslTlv(0x07, 0, Tlv(SslVersion, "TLSv1.3"), Tlv(SslCommonName, "client.example"), Tlv(SslCipher, "TLS_AES_128_GCM_SHA256"),
            Tlv(SslSignatureAlgorithm, "RSA-SHA256"), Tlv(SslKeyAlgorithm, "RSA2048"));
        var header = Complete(Tlv(Alpn, "h2"), Tlv(Authority, "bücher.example"), Tlv(Noop, 0, 0, 0), Tlv(UniqueId, 1, 2, 3, 4), ssl,
            Tlv(Netns, "blue"), AwsVpcEndpointTlv("vpce-08d2bf15fac5001c9"), AzurePrivateLinkTlv(0xDEADBEEF), GcpPscTlv(0x0102030405060708));

        Assert.Equal("h2", header.Alpn);
        Assert.Equal("bücher.example", header.Authority);
        Assert.Equal("01020304", Hex(header.UniqueId));
        Assert.Equal("vpce-08d2bf15fac5001c9", header.AwsVpcEndpointId);
        Assert.Equal(0xDEADBEEFu, header.AzurePrivateLinkId);
        Assert.Equal(0x0102030405060708ul, header.GcpPscConnectionId);
        Assert.Equal([Alpn, Authority, Noop, UniqueId, Ssl, Netns, Aws, Azure, Gcp], header.Tlvs.Select(t => t.Type));
        Assert.Equal("626C7565", Hex(header.Tlvs[5].Value)); // NETNS: raw only
        Assert.Equal("000000", Hex(header.Tlvs[2].Value)); // NOOP: ignored, kept

        var info = header.Ssl!;
        Assert.Equal(0x07, info.Client);
        Assert.Equal(0u, info.Verify);
        Assert.Equal("TLSv1.3", info.Version);
        Assert.Equal("client.example", info.CommonName);
        Assert.Equal("TLS_AES_128_GCM_SHA256", info.Cipher);
        Assert.Equal("RSA-SHA256", info.SignatureAlgorithm);
        Assert.Equal("RSA2048", info.KeyAlgorithm);
        Assert.Equal([SslVersion, SslCommonName, SslCipher, SslSignatureAlgorithm, SslKeyAlgorithm], info.SubTlvs.Select(t => t.Type));
    }

    [Fact]
    public void An_SSL_TLV_with_no_sub_TLVs_has_only_its_client_and_verify_fields()
    {
        var info = Complete(SslTlv(0x00, 0x12345678)).Ssl!;

        Assert.Equal(0, info.Client);
        Assert.Equal(0x12345678u, info.Verify);
        Assert.Null(info.Version);
        Assert.Null(info.CommonName);
        Assert.Empty(info.SubTlvs);
    }

    [Fact]
    public void Duplicates_are_all_kept_and_each_property_shows_the_first()
    {
        var header = Complete(Tlv(Alpn, "h2"), Tlv(Alpn, "http/1.1"), Tlv(Authority, "a.example"), Tlv(Authority, "b.example"),
            Tlv(UniqueId, 1), Tlv(UniqueId, 2), SslTlv(1, 0, Tlv(SslVersion, "TLSv1.2"), Tlv(SslVersion, "TLSv1.3")), SslTlv(5, 1),
            GcpPscTlv(1), GcpPscTlv(2), AzurePrivateLinkTlv(1), AzurePrivateLinkTlv(2), AwsVpcEndpointTlv("vpce-1"), AwsVpcEndpointTlv("vpce-2"));

        Assert.Equal(14, header.Tlvs.Count);
        Assert.Equal("h2", header.Alpn);
        Assert.Equal("a.example", header.Authority);
        Assert.Equal("01", Hex(header.UniqueId));
        Assert.Equal(1, header.Ssl!.Client);
        Assert.Equal("TLSv1.2", header.Ssl.Version);
        Assert.Equal(2, header.Ssl.SubTlvs.Count);
        Assert.Equal(1ul, header.GcpPscConnectionId);
        Assert.Equal(1u, header.AzurePrivateLinkId);
        Assert.Equal("vpce-1", header.AwsVpcEndpointId);
    }

    [Fact]
    public void Unknown_types_and_subtypes_are_kept_raw_and_never_an_error()
    {
        var header = Complete(Tlv(0x06, 1, 2), Tlv(0xF0), Tlv(0xFF, new byte[300]), Tlv(Aws, 0x02, 0xFF), Tlv(Aws), Tlv(Azure, 0x02, 0xFF),
            SslTlv(1, 0, Tlv(0x26, "x25519"), Tlv(0x99, 0xFF, 0xFE)));

        Assert.Equal([0x06, 0xF0, 0xFF, Aws, Aws, Azure, Ssl], header.Tlvs.Select(t => t.Type));
        Assert.Equal("0102", Hex(header.Tlvs[0].Value));
        Assert.Equal(300, header.Tlvs[2].Value.Length);
        Assert.Null(header.AwsVpcEndpointId);
        Assert.Null(header.AzurePrivateLinkId);
        Assert.Equal("FFFE", Hex(header.Ssl!.SubTlvs[1].Value));
    }

    [Fact]
    public void A_UNIQUE_ID_may_be_empty_or_up_to_128_bytes_and_no_longer()
    {
        Assert.Equal(0, Complete(Tlv(UniqueId)).UniqueId!.Value.Length);
        Assert.Equal(128, Complete(Tlv(UniqueId, new byte[128])).UniqueId!.Value.Length);

        var (decidedAt, result) = FirstDecision(Proxy(Client, Server, [Tlv(UniqueId, new byte[129])]));
        Assert.Equal(28 + 3, decidedAt);
        Assert.Contains("UNIQUE_ID TLV of 129 bytes", result.Detail);
    }

    [Fact]
    public void The_values_are_copied_out_of_the_input_whose_memory_the_pipe_reuses()
    {
        var bytes = Proxy(Client, Server, [Tlv(Alpn, "h2"), Tlv(UniqueId, 9, 9), SslTlv(1, 0, Tlv(0x26, 7))]);
        var header = Parse(bytes).Header!;

        Array.Clear(bytes);

        Assert.Equal("6832", Hex(header.Tlvs[0].Value));
        Assert.Equal("0909", Hex(header.UniqueId));
        Assert.Equal("07", Hex(header.Ssl!.SubTlvs[0].Value));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Bytes_too_few_for_a_TLV_at_the_end_are_malformed(int trailing)
    {
        var (_, block) = AddressBlock(Client, Server);
        var bytes = Header(V2Proxy, 0x11, [.. block, .. new byte[trailing]]);

        // Nothing but the length says so: decided with the 16 fixed bytes.
        var (decidedAt, result) = FirstDecision(bytes);
        Assert.Equal(16, decidedAt);
        Assert.Contains("too few for a TLV", result.Detail);

        var afterTlv = Header(V2Proxy, 0x11, [.. block, .. Encode(Tlv(Alpn, "h2")), .. new byte[trailing]]);
        Assert.Equal(28 + 3, FirstDecision(afterTlv).Length);
    }

    [Fact]
    public void A_TLV_that_runs_past_the_end_is_malformed_as_soon_as_its_length_arrives()
    {
        var bytes = Proxy(Client, Server, [Tlv(Alpn, "h2"), Tlv(Noop, new byte[10])]);
        bytes[28 + 5 + 2] = 11; // the NOOP's length low byte: one more than is left

        var (decidedAt, result) = FirstDecision(bytes);

        Assert.Equal(28 + 5 + 3, decidedAt);
        Assert.Equal("proxy_malformed", result.Reason);
        Assert.Contains("TLV 0x04 of 11 bytes runs past the end of the header", result.Detail);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(5)]
    public void A_CRC32C_TLV_of_the_wrong_length_is_malformed_not_a_checksum_mismatch(int length)
    {
        var result = Invalid(Proxy(Client, Server, [Tlv(Crc32c, new byte[length])]));

        Assert.Contains($"CRC32C TLV of {length} bytes instead of 4", result.Detail);
    }

    [Fact]
    public void A_CRC32C_TLV_of_the_wrong_value_is_a_checksum_mismatch_unless_checking_is_off()
    {
        var bytes = Proxy(Client, Server, [Tlv(Authority, "example.com")], crc32c: true);
        Assert.Equal(ProxyParseStatus.Complete, Parse(bytes).Status);

        bytes[28 + 3] ^= 0x80; // the checksum's first byte
        var result = Invalid(bytes, "proxy_crc");
        Assert.Matches("^v2: CRC32C 0x[0-9A-F]{8} sent, 0x[0-9A-F]{8} computed$", result.Detail);

        var unchecked_ = Parse(bytes, verifyCrc32c: false);
        Assert.Equal(ProxyParseStatus.Complete, unchecked_.Status);
        Assert.Equal("example.com", unchecked_.Header!.Authority);
        Assert.Equal(Crc32c, unchecked_.Header.Tlvs[0].Type);
    }

    [Fact]
    public void A_right_CRC32C_TLV_is_accepted_wherever_it_sits_and_stays_in_the_list()
    {
        var first = Proxy(Client, Server, [Tlv(Alpn, "h2")], crc32c: true);
        Assert.Equal([Crc32c, Alpn], Parse(first).Header!.Tlvs.Select(t => t.Type));

        // Moved last, with the checksum computed again over the new layout.
        var (_, block) = AddressBlock(Client, Server);
        var last = Header(V2Proxy, 0x11, block, [Tlv(Alpn, "h2"), Tlv(Crc32c, 0, 0, 0, 0)]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(last.AsSpan(last.Length - 4), ReferenceCrc32C(last));
        Assert.Equal([Alpn, Crc32c], Parse(last).Header!.Tlvs.Select(t => t.Type));
    }

    [Fact]
    public void Two_CRC32C_TLVs_are_malformed()
    {
        var result = Invalid(Proxy(Client, Server, [Tlv(Crc32c, 0, 0, 0, 0)], crc32c: true));

        Assert.Contains("more than one CRC32C TLV", result.Detail);
    }

    [Theory]
    [InlineData(4, "SSL TLV of 4 bytes")]
    [InlineData(0, "SSL TLV of 0 bytes")]
    public void An_SSL_TLV_too_short_for_its_fixed_fields_is_malformed(int length, string detail) =>
        Assert.Contains(detail, Invalid(Proxy(Client, Server, [Tlv(Ssl, new byte[length])])).Detail);

    [Fact]
    public void An_SSL_sub_TLV_that_runs_past_the_SSL_TLV_is_malformed_even_when_the_header_goes_on()
    {
        var ssl = SslTlv(1, 0, Tlv(SslVersion, "TLSv1.3"));
        var value = ssl.Value.ToArray();
        value[5 + 2] = 8; // one byte more than the SSL TLV holds
        var bytes = Proxy(Client, Server, [new ProxyTlv(Ssl, value), Tlv(Noop, new byte[20])]);

        var (decidedAt, result) = FirstDecision(bytes);

        Assert.Equal(28 + 3 + 5 + 3, decidedAt);
        Assert.Contains("SSL sub-TLV 0x21 of 8 bytes runs past the end of the SSL TLV", result.Detail);
    }

    [Fact]
    public void Bytes_too_few_for_a_sub_TLV_at_the_end_of_an_SSL_TLV_are_malformed() =>
        Assert.Contains("too few for a sub-TLV", Invalid(Proxy(Client, Server, [new ProxyTlv(Ssl, new byte[] { 1, 0, 0, 0, 0, 0x21, 0 })])).Detail);

    [Theory]
    [InlineData(7)]
    [InlineData(9)]
    public void A_GCP_TLV_of_other_than_8_bytes_is_malformed(int length) =>
        Assert.Contains($"GCP PSC connection id TLV of {length} bytes instead of 8", Invalid(Proxy(Client, Server, [Tlv(Gcp, new byte[length])])).Detail);

    [Fact]
    public void An_Azure_private_link_TLV_of_other_than_5_bytes_is_malformed() =>
        Assert.Contains("Azure private link id TLV of 4 bytes instead of 5", Invalid(Proxy(Client, Server, [Tlv(Azure, 1, 2, 3, 4)])).Detail);

    [Theory]
    [InlineData(Alpn, "ALPN")]
    [InlineData(Authority, "AUTHORITY")]
    public void Text_that_is_not_UTF8_is_malformed(byte type, string name)
    {
        var result = Invalid(Proxy(Client, Server, [Tlv(type, 0x61, 0xC3, 0x28)]));

        Assert.Equal($"v2: {name} 'a\\xC3(' is not UTF-8", result.Detail);
    }

    [Fact]
    public void An_SSL_string_that_is_not_UTF8_or_an_AWS_id_that_is_not_ASCII_is_malformed()
    {
        Assert.Contains("SSL common name", Invalid(Proxy(Client, Server, [SslTlv(1, 0, Tlv(SslCommonName, 0xFF))])).Detail);
        Assert.Contains("not ASCII", Invalid(Proxy(Client, Server, [new ProxyTlv(Aws, new byte[] { 0x01, (byte)'v', 0xC3, 0xA9 })])).Detail);
    }
}
