using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

using NetStream.Transport.Internal;

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

            return path.Length > 0 ? new UnixDomainSocketEndPoint(path) : throw Bad("the Unix socket path is empty");
        }

        if (url.StartsWith("fd:", StringComparison.Ordinal))
        {
            return ulong.TryParse(url.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out var fd)
                ? new TakenFileHandleEndPoint(fd)
                : throw Bad("expected fd:<descriptor number>");
        }

        if (url.StartsWith("systemd:", StringComparison.Ordinal))
        {
            return new TakenFileHandleEndPoint((ulong)systemd.Resolve(url["systemd:".Length..]));
        }

        if (!url.StartsWith("tcp://", StringComparison.Ordinal))
        {
            throw Bad("not a NetStream endpoint URL: expected tcp://host:port, unix:/path, fd:N or systemd:[index|name]");
        }

        var authority = url["tcp://".Length..].TrimEnd('/');
        var colon = authority.LastIndexOf(':');
        if (colon <= 0 || authority.IndexOf(']', colon) >= 0)
        {
            throw Bad("no port: expected tcp://host:port (port 0 lets the kernel pick one)");
        }

        if (!int.TryParse(authority.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            throw Bad($"the port '{authority[(colon + 1)..]}' is not a number from 0 to 65535");
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
            : throw Bad($"'{host}' is not an IP address, *, [::] or localhost (host names are not resolved)");
    }

    /// <summary>Says what is wrong with the URL; the caller names the key and the URL.</summary>
    private static FormatException Bad(string why) => new($"{why}.");
}
