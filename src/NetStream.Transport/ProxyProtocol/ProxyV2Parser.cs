using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Unicode;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// The version 2 binary header: the 12-byte signature, version and command, family and transport, a big-endian length,
/// then the address block and TLVs. Checked as far as the bytes go, so that a header that can no longer be valid is
/// refused as soon as the byte that breaks it arrives.
/// </summary>
internal static class ProxyV2Parser
{
    /// <summary>The signature, the version and command byte, the family byte and the two length bytes.</summary>
    public const int FixedBytes = 16;

    private const int VersionAndCommandAt = 12; // the 13th byte, right after the signature
    private const int FamilyAndTransportAt = 13;
    private const int LengthAt = 14;
    private const int UnixPathBytes = 108; // sizeof(sun_path)

    public static ReadOnlySpan<byte> Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>As <see cref="ProxyHeaderParser.Parse"/>, for <paramref name="input"/> that begins with the whole signature.</summary>
    public static ProxyParseOutcome Parse(in ReadOnlySequence<byte> input, int maxHeaderBytes, bool verifyCrc32c)
    {
        Span<byte> head = stackalloc byte[FixedBytes];
        head = head[..(int)Math.Min(input.Length, FixedBytes)];
        input.Slice(0, head.Length).CopyTo(head);

        if (head.Length > VersionAndCommandAt && CheckVersionAndCommand(head[VersionAndCommandAt]) is { } badCommand)
        {
            return ProxyParseOutcome.Malformed(badCommand);
        }

        var addressBytes = 0;
        if (head.Length > FamilyAndTransportAt && CheckFamily(head[FamilyAndTransportAt], out addressBytes) is { } badFamily)
        {
            return ProxyParseOutcome.Malformed(badFamily);
        }

        if (head.Length < FixedBytes)
        {
            return ProxyParseOutcome.Incomplete;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(head[LengthAt..]);
        if (length > maxHeaderBytes - FixedBytes)
        {
            return ProxyParseOutcome.TooLong($"v2: a header of {FixedBytes + length} bytes, over the limit of {maxHeaderBytes}");
        }

        if (length < addressBytes)
        {
            // LOCAL too: the length must still cover the block the family announces, or the TLVs would start mid-address.
            return ProxyParseOutcome.Malformed($"v2: {length} bytes after the fixed header, fewer than the {addressBytes}-byte address block");
        }

        var total = FixedBytes + length;
        var tlvStart = FixedBytes + addressBytes;
        if (input.Length < total)
        {
            return CheckPrefix(input, tlvStart, total);
        }

        // Copied once, to the byte: the TLVs' values are slices of it, and the pipe reuses its memory after AdvanceTo.
        var header = new byte[total];
        input.Slice(0, total).CopyTo(header);
        return ProxyTlvReader.Check(header, tlvStart, total) is { } badTlv
            ? ProxyParseOutcome.Malformed(badTlv)
            : Build(header, tlvStart, verifyCrc32c);
    }

    private static string? CheckVersionAndCommand(byte versionAndCommand) => (versionAndCommand >> 4, versionAndCommand & 0xF) switch
    {
        (not 2, _) => $"v2: version {versionAndCommand >> 4} instead of 2",
        (_, > 1) => $"v2: command {versionAndCommand & 0xF}, neither LOCAL (0) nor PROXY (1)",
        _ => null,
    };

    private static string? CheckFamily(byte familyAndTransport, out int addressBytes)
    {
        addressBytes = (familyAndTransport >> 4) switch
        {
            0 => 0, // UNSPEC: no address block, the TLVs (if any) start right after the fixed header
            1 => (2 * 4) + (2 * 2),
            2 => (2 * 16) + (2 * 2),
            3 => 2 * UnixPathBytes,
            _ => -1,
        };

        return addressBytes < 0 ? $"v2: address family {familyAndTransport >> 4}, none of UNSPEC, INET, INET6, UNIX"
            : (familyAndTransport & 0xF) > 2 ? $"v2: transport {familyAndTransport & 0xF}, none of UNSPEC, STREAM, DGRAM"
            : null;
    }

    private static ProxyParseOutcome CheckPrefix(in ReadOnlySequence<byte> input, int tlvStart, int total)
    {
        // The TLVs that have arrived can already break the header (a length past its end); a copy of the few hundred
        // bytes each time more arrives is nothing next to the read that brought them.
        var received = (int)input.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(received);
        try
        {
            input.CopyTo(buffer);
            return ProxyTlvReader.Check(buffer.AsSpan(0, received), tlvStart, total) is { } badTlv
                ? ProxyParseOutcome.Malformed(badTlv)
                : ProxyParseOutcome.Incomplete;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ProxyParseOutcome Build(byte[] header, int tlvStart, bool verifyCrc32c)
    {
        if (ProxyTlvReader.Read(header, tlvStart, out var tlvs) is { } badValue)
        {
            return ProxyParseOutcome.Malformed(badValue);
        }

        if (verifyCrc32c && tlvs.CrcOffset >= 0 && CheckCrc(header, tlvs.CrcOffset) is { } badCrc)
        {
            return ProxyParseOutcome.CrcMismatch(badCrc);
        }

        EndPoint? source = null;
        EndPoint? destination = null;
        var command = (header[VersionAndCommandAt] & 0xF) == 1 ? ProxyCommand.Proxy : ProxyCommand.Local;

        // LOCAL: the proxy speaks for itself (a health check), and an UNSPEC transport names no usable addresses: the
        // specification has the receiver ignore the address block in both cases.
        if (command == ProxyCommand.Proxy && (header[FamilyAndTransportAt] & 0xF) != 0 && ReadAddresses(header, out source, out destination) is { } badAddress)
        {
            return ProxyParseOutcome.Malformed(badAddress);
        }

        var parsed = new ProxyHeader
        {
            Version = 2,
            Command = command,
            SourceEndPoint = source,
            DestinationEndPoint = destination,
            Tlvs = tlvs.All,
            Alpn = tlvs.Alpn,
            Authority = tlvs.Authority,
            UniqueId = tlvs.UniqueId,
            Ssl = tlvs.Ssl,
            AwsVpcEndpointId = tlvs.AwsVpcEndpointId,
            AzurePrivateLinkId = tlvs.AzurePrivateLinkId,
            GcpPscConnectionId = tlvs.GcpPscConnectionId,
        };

        return ProxyParseOutcome.Complete(parsed, header.Length);
    }

    private static string? CheckCrc(ReadOnlySpan<byte> header, int offset)
    {
        // The sender computed it with its own four bytes zeroed.
        var state = Crc32C.Append(Crc32C.Start, header[..offset]);
        state = Crc32C.Append(state, [0, 0, 0, 0]);
        var computed = Crc32C.Finish(Crc32C.Append(state, header[(offset + 4)..]));
        var sent = BinaryPrimitives.ReadUInt32BigEndian(header[offset..]);
        return computed == sent ? null : $"v2: CRC32C 0x{sent:X8} sent, 0x{computed:X8} computed";
    }

    private static string? ReadAddresses(ReadOnlySpan<byte> header, out EndPoint? source, out EndPoint? destination)
    {
        var block = header[FixedBytes..];
        (source, destination) = (header[FamilyAndTransportAt] >> 4) switch
        {
            1 => (new IPEndPoint(new IPAddress(block[..4]), BinaryPrimitives.ReadUInt16BigEndian(block[8..])),
                  new IPEndPoint(new IPAddress(block[4..8]), BinaryPrimitives.ReadUInt16BigEndian(block[10..]))),
            2 => (new IPEndPoint(new IPAddress(block[..16]), BinaryPrimitives.ReadUInt16BigEndian(block[32..])),
                  new IPEndPoint(new IPAddress(block[16..32]), BinaryPrimitives.ReadUInt16BigEndian(block[34..]))),
            _ => ((EndPoint?)null, (EndPoint?)null), // UNSPEC: nothing to name
        };

        if (header[FamilyAndTransportAt] >> 4 != 3)
        {
            return null;
        }

        var fault = ReadUnixPath(block[..UnixPathBytes], out source) ?? ReadUnixPath(block[UnixPathBytes..(2 * UnixPathBytes)], out destination);
        return fault is null ? null : $"v2: Unix socket path {fault}";
    }

    private static string? ReadUnixPath(ReadOnlySpan<byte> field, out EndPoint? endPoint)
    {
        endPoint = null;
        var length = field.IndexOf((byte)0);
        if (length < 0)
        {
            // The runtime needs room for the terminating null, as the kernel's own callers do.
            return $"{ProxyHeaderParser.Quote(field)} fills all {UnixPathBytes} bytes";
        }

        if (length == 0)
        {
            return null; // an unnamed socket, or an abstract one (its name starts with a null byte)
        }

        if (!Utf8.IsValid(field[..length]))
        {
            return $"{ProxyHeaderParser.Quote(field[..length])} is not UTF-8";
        }

        endPoint = new UnixDomainSocketEndPoint(Encoding.UTF8.GetString(field[..length]));
        return null;
    }
}
