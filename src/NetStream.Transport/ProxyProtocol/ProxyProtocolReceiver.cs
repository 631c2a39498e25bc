using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using NetStream.Transport.Internal;

namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// Reads a PROXY protocol header off a connection, as the first step of the <c>accepted</c> chain: before TLS, before
/// the IP lists and limits, which then see the client the proxy speaks for. Reads the header and nothing more; the
/// application reads what follows it, byte for byte.
/// </summary>
internal sealed class ProxyProtocolReceiver
{
    /// <summary>A v2 header with two Unix socket paths: the least that must fit.</summary>
    public const int MinHeaderBytesLimit = 16 + 216;

    /// <summary>v2's own limit: 16 bytes and a 16-bit length.</summary>
    public const int MaxHeaderBytesLimit = 16 + 65535;

    private const string Unix = "unix";

    private readonly ProxyProtocolOptions _options;
    private readonly IPNetwork[] _trusted;
    private readonly bool _trustUnix;

    public ProxyProtocolReceiver(ProxyProtocolOptions options)
    {
        _options = options;
        _trusted = IpNetworks.ParseAll(options.TrustedProxies.Where(e => !IsUnix(e)));
        _trustUnix = options.TrustedProxies.Any(IsUnix);
    }

    /// <summary>Reads one entry of <see cref="ProxyProtocolOptions.TrustedProxies"/>: a network, or <c>unix</c> (no network).</summary>
    public static bool TryParseTrusted(string entry, out IPNetwork? network)
    {
        network = null;
        if (IsUnix(entry))
        {
            return true;
        }

        if (!IpNetworks.TryParse(entry, out var parsed))
        {
            return false;
        }

        network = parsed;
        return true;
    }

    /// <summary>
    /// Reads the header off <paramref name="connection"/>, if its peer is to send one: the outcome, with a refusal's
    /// reason code (<c>proxy_*</c>) and a sentence that says what was wrong.
    /// </summary>
    public async ValueTask<Received> ReceiveAsync(ConnectionContext connection, EndPoint? peer, CancellationToken cancellationToken)
    {
        long consumed = 0;
        try
        {
            return await ReceiveCoreAsync(connection, peer, bytes => consumed = bytes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The hosted server's first-byte clock waits for this: what the header took is not the client's first byte.
            connection.Features.Get<IConnectionActivityFeature>()?.ConsumedPreamble(consumed);
        }
    }

    private async ValueTask<Received> ReceiveCoreAsync(ConnectionContext connection, EndPoint? peer, Action<long> tookHeader, CancellationToken cancellationToken)
    {
        if (!IsTrusted(peer, connection.LocalEndPoint))
        {
            return _options.Mode == ProxyProtocolMode.Require
                ? Received.Refused("proxy_untrusted", $"the peer {Describe(peer)} is not in ProxyProtocol:TrustedProxies")
                : Received.None;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.HeaderTimeout);
        var input = connection.Transport.Input;

        // How much was looked at already: a pipe's examined position never goes back, and must stay short of the end
        // for the application's first read to see the bytes that were already there.
        long examined = 0;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var status = ProxyHeaderParser.Parse(buffer, _options.MaxHeaderBytes, _options.VerifyCrc32c, out var header, out var consumed, out var reason, out var detail);
                switch (status)
                {
                    case ProxyParseStatus.Complete:
                        // Exactly the header: what follows is the application's, and is not waited for.
                        var end = buffer.GetPosition(consumed);
                        tookHeader(consumed);
                        input.AdvanceTo(end, end);
                        header!.ProxyEndPoint = peer;
                        return Received.Header(header);
                    case ProxyParseStatus.NotProxy when _options.Mode == ProxyProtocolMode.Optional:
                        input.AdvanceTo(buffer.Start, buffer.GetPosition(examined));
                        return Received.None;
                    case ProxyParseStatus.NotProxy:
                        input.AdvanceTo(buffer.Start, buffer.End);
                        return Received.Refused("proxy_missing", "the connection did not start with a PROXY protocol header");
                    case ProxyParseStatus.Invalid:
                        input.AdvanceTo(buffer.Start, buffer.End);
                        return Received.Refused(reason!, detail ?? "malformed header");
                }

                // Incomplete: all of it looked at, none of it taken; the next read brings more, or the end.
                input.AdvanceTo(buffer.Start, buffer.End);
                examined = buffer.Length;
                if (result.IsCompleted || result.IsCanceled)
                {
                    return Received.Refused("proxy_malformed", $"the connection ended after {buffer.Length} bytes of a header");
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return Received.Refused("proxy_timeout", $"no whole header within ProxyProtocol:HeaderTimeout ({_options.HeaderTimeout})");
        }
    }

    /// <summary>
    /// Makes the header's client the connection's peer: its endpoints (what Kestrel's <c>HttpContext.Connection</c>, the
    /// hosted handler, the logs and the limits read), the returned address info, and the
    /// <see cref="IProxyProtocolFeature"/>. LOCAL, UNKNOWN and UNSPEC keep the real endpoints.
    /// </summary>
    public static AddressInfo Apply(ProxyHeader header, ConnectionContext connection, AddressInfo addressInfo)
    {
        connection.Features.Set<IProxyProtocolFeature>(header);
        if (header.SourceEndPoint is not { } source)
        {
            return addressInfo;
        }

        var destination = header.DestinationEndPoint ?? connection.LocalEndPoint;
        connection.RemoteEndPoint = source;
        connection.LocalEndPoint = destination;

        // The peer credentials were the proxy's.
        return addressInfo with
        {
            Family = source.AddressFamily,
            Protocol = source is IPEndPoint ? ProtocolType.Tcp : ProtocolType.Unspecified,
            RemoteEndPoint = source,
            LocalEndPoint = destination,
            PeerCredentials = null,
        };
    }

    private bool IsTrusted(EndPoint? peer, EndPoint? local)
    {
        if (_options.AllowAnyPeer)
        {
            return true;
        }

        if (peer is not IPEndPoint { Address: var address })
        {
            // A Unix socket peer has no address (nor, unbound, an endpoint): known by the endpoint it reached.
            return _trustUnix && (peer is UnixDomainSocketEndPoint || (peer is null && local is UnixDomainSocketEndPoint));
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var network in _trusted)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsUnix(string entry) => string.Equals(entry.Trim(), Unix, StringComparison.OrdinalIgnoreCase);

    private static string Describe(EndPoint? peer) => peer switch
    {
        null or UnixDomainSocketEndPoint => "(a Unix socket client)",
        _ => peer.ToString() ?? "?",
    };

    /// <summary>What the receiver made of a connection's start.</summary>
    internal readonly record struct Received(ProxyHeader? Proxy, string? Reason, string? Detail)
    {
        /// <summary>No header: the connection is served as it is.</summary>
        public static Received None => default;

        public bool IsRefused => Reason is not null;

        public static Received Header(ProxyHeader header) => new(header, null, null);

        public static Received Refused(string reason, string detail) => new(null, reason, detail);
    }
}
