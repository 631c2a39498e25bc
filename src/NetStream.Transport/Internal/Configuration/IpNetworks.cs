using System.Net;

namespace NetStream.Transport.Internal;

/// <summary>Reads the entries of the allow and deny lists: CIDR (<c>10.0.0.0/8</c>, <c>fd00::/8</c>) or a single address.</summary>
internal static class IpNetworks
{
    /// <summary>
    /// Reads one entry. IPv4 written in IPv6 (<c>::ffff:10.0.0.0/104</c>) becomes IPv4 (<c>10.0.0.0/8</c>): that is how
    /// the filter sees peers, whatever the socket's family.
    /// </summary>
    public static bool TryParse(string? text, out IPNetwork network)
    {
        if (!TryParseAsWritten(text, out network))
        {
            return false;
        }

        if (network.BaseAddress.IsIPv4MappedToIPv6 && network.PrefixLength >= 96)
        {
            network = new IPNetwork(network.BaseAddress.MapToIPv4(), network.PrefixLength - 96);
        }

        return true;
    }

    private static bool TryParseAsWritten(string? text, out IPNetwork network)
    {
        network = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (!text.Contains('/'))
        {
            if (!IPAddress.TryParse(text, out var address))
            {
                return false;
            }

            network = new IPNetwork(address, address.GetAddressBytes().Length * 8);
            return true;
        }

        // Strict: 10.0.0.1/8 (host bits set) is refused, since it usually means a typo in the prefix; the runtime's
        // parser would quietly widen it to 10.0.0.0/8.
        return IPNetwork.TryParse(text, out network)
            && IPAddress.TryParse(text.AsSpan(0, text.IndexOf('/')), out var written)
            && network.BaseAddress.Equals(written);
    }

    public static IPNetwork[] ParseAll(IEnumerable<string> entries) => entries
        .Select(e => TryParse(e, out var network) ? network : throw new FormatException($"'{e}' is not an IP network."))
        .ToArray();
}
