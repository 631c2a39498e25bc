using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Hosting.Internal;

/// <summary>Parses an endpoint URL of the hosted server's configuration.</summary>
internal static class EndpointUrl
{
    /// <summary>
    /// The end point <paramref name="url"/> names; a <c>systemd:</c> URL resolves to a descriptor of
    /// <paramref name="systemd"/>.
    /// </summary>
    /// <exception cref="FormatException">The URL is malformed.</exception>
    /// <exception cref="InvalidOperationException">A <c>systemd:</c> URL picks no socket systemd passed.</exception>
    public static EndPoint Parse(string url, SystemdSockets systemd)
    {
        if (url.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = url["unix:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
            {
                path = path[2..];
            }

            return path.Length > 0 ? new UnixDomainSocketEndPoint(path) : throw Bad(url, "the Unix socket path is empty");
        }

        if (url.StartsWith("fd:", StringComparison.Ordinal))
        {
            return ulong.TryParse(url.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out var fd)
                ? new FileHandleEndPoint(fd, FileHandleType.Auto)
                : throw Bad(url, "expected fd:<descriptor number>");
        }

        if (url.StartsWith("systemd:", StringComparison.Ordinal))
        {
            return new FileHandleEndPoint((ulong)systemd.Resolve(url["systemd:".Length..]), FileHandleType.Auto);
        }

        if (!url.StartsWith("tcp://", StringComparison.Ordinal))
        {
            throw Bad(url, "expected tcp://host:port, unix:/path, fd:N or systemd:[index|name]");
        }

        var authority = url["tcp://".Length..].TrimEnd('/');
        var colon = authority.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(authority.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            throw Bad(url, "expected a port from 0 to 65535 after the host");
        }

        var host = authority[..colon];
        if (host is "*" or "[::]")
        {
            return new IPEndPoint(IPAddress.IPv6Any, port);
        }

        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        return IPAddress.TryParse(host.Trim('[', ']'), out var address)
            ? new IPEndPoint(address, port)
            : throw Bad(url, $"'{host}' is not an IP address (host names are not resolved)");
    }

    private static FormatException Bad(string url, string why) => new($"'{url}' is not a NetStream endpoint URL: {why}.");
}
