using System.Net;
using System.Net.Sockets;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// The fields of a version 1 line, each checked either whole or as the beginning of a field still arriving: a
/// beginning passes when some ending could still make it valid. Each returns the fault, or <see langword="null"/>.
/// </summary>
internal static class ProxyV1Tokens
{
    // "0000:0000:0000:0000:0000:ffff:255.255.255.255", the longest way to write an IPv6 address.
    private const int MaxIPv6Chars = 45;

    public static string? CheckProtocol(ReadOnlySpan<byte> token, bool whole) =>
        IsOrStarts(token, "TCP4"u8, whole) || IsOrStarts(token, "TCP6"u8, whole) || IsOrStarts(token, "UNKNOWN"u8, whole)
            ? null
            : "unknown protocol";

    public static string? CheckIPv4(ReadOnlySpan<byte> token, bool whole)
    {
        var dots = 0;
        var digits = 0;
        var octet = 0;
        foreach (var b in token)
        {
            if (char.IsAsciiDigit((char)b))
            {
                // Some parsers read 010 as octal 8: refuse what two readers could disagree on.
                if (digits == 1 && octet == 0)
                {
                    return "leading zero in address";
                }

                octet = (octet * 10) + (b - '0');
                digits++;
                if (octet > 255)
                {
                    return "octet over 255 in address";
                }
            }
            else if (b == '.')
            {
                if (digits == 0)
                {
                    return "empty octet in address";
                }

                if (++dots == 4)
                {
                    return "more than four octets in address";
                }

                digits = 0;
                octet = 0;
            }
            else
            {
                return b == ':' ? "IPv6 address after TCP4" : "not an IPv4 address";
            }
        }

        if (!whole)
        {
            return null;
        }

        // 127.1 and 10.1.2 are IPv4 to inet_aton, not to the specification.
        return digits == 0 ? "empty octet in address" : dots < 3 ? "fewer than four octets in address" : null;
    }

    public static string? CheckIPv6(ReadOnlySpan<byte> token, bool whole)
    {
        if (token.Length > MaxIPv6Chars)
        {
            return "not an IPv6 address";
        }

        var lastColon = token.LastIndexOf((byte)':');
        var colons = 0;
        var groupChars = 0;
        for (var i = 0; i < token.Length; i++)
        {
            var b = token[i];
            if (b == '%')
            {
                // A zone names an interface of the sender's host, meaningless here.
                return "zone id in address";
            }

            if (b == ':')
            {
                // Seven groups and a "::" at one end take eight colons; no address takes more, nor three in a row.
                if (++colons > 8 || (i >= 2 && token[i - 1] == ':' && token[i - 2] == ':'))
                {
                    return "not an IPv6 address";
                }

                groupChars = 0;
            }
            else if (b == '.')
            {
                if (lastColon < 0)
                {
                    return "IPv4 address after TCP6";
                }

                if (i < lastColon)
                {
                    return "not an IPv6 address";
                }

                groupChars = 0;
            }
            else if (!char.IsAsciiHexDigit((char)b) || ++groupChars > 4)
            {
                return "not an IPv6 address";
            }
        }

        if (token.IndexOf("::"u8) is >= 0 and var first && token[(first + 1)..].IndexOf("::"u8) > 0)
        {
            return "not an IPv6 address";
        }

        // An IPv4 tail (::ffff:10.0.0.1) is held to the same rules as a TCP4 address.
        var tail = token[(lastColon + 1)..];
        if (lastColon >= 0 && tail.Contains((byte)'.') && CheckIPv4(tail, whole) is { } fault)
        {
            return fault;
        }

        return !whole || (IPAddress.TryParse(token, out var address) && address.AddressFamily == AddressFamily.InterNetworkV6)
            ? null
            : "not an IPv6 address";
    }

    public static string? CheckPort(ReadOnlySpan<byte> token, bool whole)
    {
        var port = 0;
        for (var i = 0; i < token.Length; i++)
        {
            if (!char.IsAsciiDigit((char)token[i]))
            {
                return "not a port";
            }

            if (i == 1 && token[0] == '0')
            {
                return "leading zero in port";
            }

            port = (port * 10) + (token[i] - '0');
            if (port > IPEndPoint.MaxPort)
            {
                return "port over 65535";
            }
        }

        return whole && token.IsEmpty ? "not a port" : null;
    }

    /// <summary>A port that <see cref="CheckPort"/> passed whole.</summary>
    public static int ParsePort(ReadOnlySpan<byte> token)
    {
        var port = 0;
        foreach (var b in token)
        {
            port = (port * 10) + (b - '0');
        }

        return port;
    }

    private static bool IsOrStarts(ReadOnlySpan<byte> token, ReadOnlySpan<byte> word, bool whole) =>
        whole ? token.SequenceEqual(word) : word.StartsWith(token);
}
