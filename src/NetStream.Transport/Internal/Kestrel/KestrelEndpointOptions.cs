using System.Net;

namespace NetStream.Transport.Internal;

/// <summary>
/// Transport options of single Kestrel endpoints (<c>listenOptions.UseNetStreamTransport(...)</c>): Kestrel hands the
/// transport only the endpoint it binds, so the endpoint is the key: the very instance (two endpoints on port 0 are
/// equal), else an equal one.
/// </summary>
internal sealed class KestrelEndpointOptions
{
    private readonly List<(EndPoint EndPoint, Action<NetStreamTransportOptions> Configure)> _endpoints = [];

    public void Add(EndPoint endPoint, Action<NetStreamTransportOptions> configure)
    {
        lock (_endpoints)
        {
            _endpoints.Add((endPoint, configure));
        }
    }

    /// <summary>The options of <paramref name="endPoint"/>: <paramref name="shared"/>, or a copy with the endpoint's changes.</summary>
    public NetStreamTransportOptions For(EndPoint endPoint, NetStreamTransportOptions shared)
    {
        Action<NetStreamTransportOptions>[] configure;
        lock (_endpoints)
        {
            var same = _endpoints.Where(e => ReferenceEquals(e.EndPoint, endPoint)).ToArray();
            configure = [.. (same.Length > 0 ? same : _endpoints.Where(e => e.EndPoint.Equals(endPoint))).Select(e => e.Configure)];
        }

        if (configure.Length == 0)
        {
            return shared;
        }

        var own = shared.Clone();
        foreach (var change in configure)
        {
            change(own);
        }

        return own;
    }
}
