using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>
/// The <c>NetStream</c> meter: what only the transport and its server know. Kestrel reports connection counts
/// and durations of its own endpoints itself; the hosted server reports them here.
/// </summary>
internal sealed class NetStreamMetrics
{
    public const string MeterName = "NetStream";

    private static readonly Lazy<NetStreamMetrics> s_shared = new(() => new NetStreamMetrics(new Meter(MeterName)));

    private readonly Counter<long> _accepted;
    private readonly Counter<long> _acceptErrors;
    private readonly Counter<long> _acceptBackoffs;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _heldBack;
    private readonly UpDownCounter<long> _notAccepting;
    private readonly Counter<long> _timedOut;
    private readonly Counter<long> _handlerErrors;
    private readonly UpDownCounter<long> _active;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _rtt;
    private readonly Histogram<long> _retransmits;
    private readonly Counter<long> _handoffs;
    private readonly Counter<long> _handoffSockets;
    private readonly Histogram<double> _handoffDrain;

    public NetStreamMetrics(IMeterFactory meterFactory)
        : this(meterFactory.Create(MeterName))
    {
    }

    private NetStreamMetrics(Meter meter)
    {
        _accepted = meter.CreateCounter<long>("netstream.connections.accepted", "{connection}", "Connections accepted.");
        _acceptErrors = meter.CreateCounter<long>("netstream.accept.errors", "{error}", "Failed accept calls, by error.");
        _acceptBackoffs = meter.CreateCounter<long>("netstream.accept.backoffs", "{backoff}", "Pauses of an accept loop after resource exhaustion.");
        _heldBack = meter.CreateCounter<long>("netstream.accept.held_back", "{pause}", "Times an accept loop held back to keep DescriptorReserve file descriptors free.");
        _notAccepting = meter.CreateUpDownCounter<long>("netstream.listeners.not_accepting", "{listener}", "Listeners whose every accept has failed for 10 s: 1 while an endpoint is not accepting.");
        _refused = meter.CreateCounter<long>("netstream.connections.refused", "{connection}", "Connections closed by NetStream before the application saw them, by reason.");
        _timedOut = meter.CreateCounter<long>("netstream.connections.timed_out", "{connection}", "Hosted connections closed for FirstByteTimeout or IdleTimeout, by reason.");
        _handlerErrors = meter.CreateCounter<long>("netstream.handler.errors", "{connection}", "Hosted connections whose handler ended with an exception, by error.type: connection_reset (the peer reset it), connection_aborted, exception.");
        _active = meter.CreateUpDownCounter<long>("netstream.connections.active", "{connection}", "Connections the hosted server is serving.");
        _duration = meter.CreateHistogram<double>("netstream.connection.duration", "s", "How long connections of the hosted server lasted.");
        _rtt = meter.CreateHistogram<double>("netstream.connection.rtt", "s", "Smoothed round-trip time of TCP connections as they closed (TcpInfoOnClose).");
        _retransmits = meter.CreateHistogram<long>("netstream.connection.retransmits", "{segment}", "Segments TCP connections retransmitted over their life, as they closed (TcpInfoOnClose).");
        _handoffs = meter.CreateCounter<long>("netstream.handoffs", "{handoff}", "Listener handoffs, by netstream.handoff.direction (sent: this process handed its sockets on; received: it took its predecessor's), with error.type when one did not complete.");
        _handoffSockets = meter.CreateCounter<long>("netstream.handoff.sockets", "{socket}", "Listening sockets this process took over from its predecessor, by network.transport.");
        _handoffDrain = meter.CreateHistogram<double>("netstream.handoff.drain.duration", "s", "From a completed handoff to the end of this process's stop: how long its own connections took to finish.");
    }

    /// <summary>The instance used when no <see cref="IMeterFactory"/> is at hand (a listener made outside DI).</summary>
    public static NetStreamMetrics Shared => s_shared.Value;

    /// <summary>A connection accepted on the listener the <paramref name="endpoint"/> tags describe.</summary>
    public void Accepted(MetricTags endpoint) => _accepted.Add(1, endpoint.Span);

    /// <summary>A failed accept: <paramref name="error"/> is the errno's name (<c>EMFILE</c>) or the exception's type.</summary>
    public void AcceptError(MetricTags endpoint, string error) => _acceptErrors.Add(1, endpoint.With(ErrorType, error));

    public void AcceptBackoff(MetricTags endpoint) => _acceptBackoffs.Add(1, endpoint.Span);

    public void HeldBack(MetricTags endpoint) => _heldBack.Add(1, endpoint.Span);

    public void NotAccepting(MetricTags endpoint, int delta) => _notAccepting.Add(delta, endpoint.Span);

    /// <summary>A connection refused before the application saw it, for <paramref name="reason"/> (<see cref="RefusalReasons"/>, or a hook's own).</summary>
    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>(ErrorType, reason));

    public void TimedOut(MetricTags endpoint, string reason) => _timedOut.Add(1, endpoint.With(ErrorType, reason));

    public void HandlerError(MetricTags endpoint, string errorType) => _handlerErrors.Add(1, endpoint.With(ErrorType, errorType));

    /// <summary>A hosted connection started on the endpoint the <paramref name="endpoint"/> tags describe.</summary>
    public void ConnectionStarted(MetricTags endpoint) => _active.Add(1, endpoint.Span);

    public void ConnectionEnded(MetricTags endpoint, long startTimestamp)
    {
        _active.Add(-1, endpoint.Span);
        _duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, endpoint.Span);
    }

    /// <summary>A TCP connection's last <c>TCP_INFO</c>, read as it closed.</summary>
    public void ClosedTcpInfo(MetricTags endpoint, in TcpInfo info)
    {
        _rtt.Record(info.RoundTripTime.TotalSeconds, endpoint.Span);
        _retransmits.Record(info.TotalRetransmits, endpoint.Span);
    }

    /// <summary>A handoff this process took part in: <paramref name="direction"/> <c>sent</c> or <c>received</c>; <paramref name="errorType"/> when it failed.</summary>
    public void Handoff(string direction, string? errorType = null)
    {
        var tag = new KeyValuePair<string, object?>("netstream.handoff.direction", direction);
        if (errorType is null)
        {
            _handoffs.Add(1, tag);
        }
        else
        {
            _handoffs.Add(1, tag, new KeyValuePair<string, object?>(ErrorType, errorType));
        }
    }

    /// <summary>A listening socket taken over from the predecessor.</summary>
    public void HandoffSocketTaken(System.Net.EndPoint endPoint) =>
        _handoffSockets.Add(1, new KeyValuePair<string, object?>("network.transport", endPoint is System.Net.Sockets.UnixDomainSocketEndPoint ? "unix" : "tcp"));

    public void HandoffDrained(TimeSpan duration) => _handoffDrain.Record(duration.TotalSeconds);

    private const string ErrorType = "error.type";
}

/// <summary>
/// The tags of one endpoint's measurements, made once per listener: OpenTelemetry's semantic conventions where one
/// exists, as Kestrel tags its own connection metrics (<c>network.transport</c> <c>tcp</c> or <c>unix</c>,
/// <c>network.type</c> <c>ipv4</c> or <c>ipv6</c>, <c>server.address</c>, <c>server.port</c>), and for the hosted server's
/// endpoints <c>netstream.endpoint.name</c>, the endpoint's name in configuration.
/// </summary>
internal sealed class MetricTags
{
    private readonly KeyValuePair<string, object?>[] _tags;

    private MetricTags(KeyValuePair<string, object?>[] tags) => _tags = tags;

    public ReadOnlySpan<KeyValuePair<string, object?>> Span => _tags;

    /// <summary>The tags of the listener bound to <paramref name="endPoint"/> (its real address, port 0 resolved).</summary>
    public static MetricTags ForEndPoint(EndPoint endPoint, string? endpointName = null)
    {
        var tags = new List<KeyValuePair<string, object?>>(5);
        switch (endPoint)
        {
            case IPEndPoint ip:
                tags.Add(new("network.transport", "tcp"));
                tags.Add(new("network.type", ip.AddressFamily == AddressFamily.InterNetworkV6 ? "ipv6" : "ipv4"));
                tags.Add(new("server.address", ip.Address.ToString()));
                tags.Add(new("server.port", ip.Port));
                break;
            case UnixDomainSocketEndPoint unix:
                tags.Add(new("network.transport", "unix"));
                tags.Add(new("server.address", unix.ToString()));
                break;
            default:
                tags.Add(new("server.address", endPoint.ToString()));
                break;
        }

        if (endpointName is not null)
        {
            tags.Add(new("netstream.endpoint.name", endpointName));
        }

        return new MetricTags([.. tags]);
    }

    /// <summary>These tags and one more.</summary>
    public TagList With(string key, string value)
    {
        var list = new TagList(_tags);
        list.Add(key, value);
        return list;
    }
}
