using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;

namespace NetStream.Transport.Internal;

/// <summary>
/// Transport options of single Kestrel endpoints, from Kestrel's configuration (a <c>NetStream</c> section inside an
/// endpoint: <c>Kestrel:Endpoints:Api:NetStream:Engine = Sockets</c>) and from code
/// (<c>listenOptions.UseNetStreamTransport(...)</c>, applied after the configuration). Kestrel hands the transport only
/// the endpoint it binds, so the endpoint is the key: for code, the very instance (two endpoints on port 0 are equal),
/// else an equal one; for configuration, the endpoint its <c>Url</c> binds, read the way Kestrel reads it.
/// </summary>
internal sealed class KestrelEndpointOptions
{
    private readonly List<(EndPoint EndPoint, Action<NetStreamTransportOptions> Configure)> _endpoints = [];
    private IConfiguration? _kestrel;

    public void Add(EndPoint endPoint, Action<NetStreamTransportOptions> configure)
    {
        lock (_endpoints)
        {
            _endpoints.Add((endPoint, configure));
        }
    }

    /// <summary>The configuration Kestrel binds its endpoints from (its <c>Kestrel</c> section, usually); read at each bind.</summary>
    public void UseKestrelConfiguration(IConfiguration? kestrel) => _kestrel = kestrel;

    /// <summary>The options of <paramref name="endPoint"/>: <paramref name="shared"/>, or a copy with the endpoint's changes.</summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The endpoint's section has unknown keys or values that do not convert.</exception>
    /// <exception cref="InvalidOperationException">Several configured endpoints bind <paramref name="endPoint"/> and one has a <c>NetStream</c> section.</exception>
    public NetStreamTransportOptions For(EndPoint endPoint, NetStreamTransportOptions shared)
    {
        Action<NetStreamTransportOptions>[] configure;
        lock (_endpoints)
        {
            var same = _endpoints.Where(e => ReferenceEquals(e.EndPoint, endPoint)).ToArray();
            configure = [.. (same.Length > 0 ? same : _endpoints.Where(e => e.EndPoint.Equals(endPoint))).Select(e => e.Configure)];
        }

        var section = ConfiguredSection(endPoint);
        if (configure.Length == 0 && section is null)
        {
            return shared;
        }

        var own = shared.Clone();
        if (section is not null)
        {
            SectionBinder.Bind(section, own, []);
        }

        foreach (var change in configure)
        {
            change(own);
        }

        return own;
    }

    /// <summary>The <c>NetStream</c> section of the configured endpoint that binds <paramref name="endPoint"/>, if it has one.</summary>
    private IConfigurationSection? ConfiguredSection(EndPoint endPoint)
    {
        if (_kestrel is null)
        {
            return null;
        }

        var binding = _kestrel.GetSection("Endpoints").GetChildren().Where(e => Binds(e["Url"], endPoint)).ToList();
        var withOptions = binding.Where(e => e.GetSection("NetStream").Exists()).ToList();
        if (withOptions.Count == 0)
        {
            return null;
        }

        if (binding.Count > 1)
        {
            throw new InvalidOperationException(
                $"The Kestrel endpoints {string.Join(", ", binding.Select(e => e.Key))} all bind {endPoint}, and {withOptions[0].Path} says how: " +
                "NetStream cannot tell which of them it is binding. Give them distinct addresses, or set their options in code (listen.UseNetStreamTransport).");
        }

        return withOptions[0].GetSection("NetStream");
    }

    /// <summary>
    /// Whether Kestrel binds <paramref name="endPoint"/> for <paramref name="url"/>: an IP address binds itself,
    /// <c>localhost</c> both loopback addresses, any other host name (<c>*</c>, <c>+</c>, a name) the any-address of either
    /// family; <c>unix:/path</c> that socket file. The port is the URL's, else the scheme's.
    /// </summary>
    internal static bool Binds(string? url, EndPoint endPoint)
    {
        if (string.IsNullOrWhiteSpace(url))
        {
            return false;
        }

        BindingAddress address;
        try
        {
            address = BindingAddress.Parse(url);
        }
        catch (FormatException)
        {
            return false; // Kestrel reports it
        }

        if (address.IsUnixPipe)
        {
            return endPoint is UnixDomainSocketEndPoint unix && unix.ToString() == address.UnixPipePath;
        }

        if (endPoint is not IPEndPoint ip || ip.Port != address.Port)
        {
            return false;
        }

        if (IPAddress.TryParse(address.Host.Trim('[', ']'), out var literal))
        {
            return literal.Equals(ip.Address);
        }

        return string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase)
            ? IPAddress.IsLoopback(ip.Address)
            : ip.Address.Equals(IPAddress.IPv6Any) || ip.Address.Equals(IPAddress.Any);
    }
}
