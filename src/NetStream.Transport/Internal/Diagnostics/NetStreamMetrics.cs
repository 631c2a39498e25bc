using System.Diagnostics;
using System.Diagnostics.Metrics;

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
    }

    /// <summary>The instance used when no <see cref="IMeterFactory"/> is at hand (a listener made outside DI).</summary>
    public static NetStreamMetrics Shared => s_shared.Value;

    /// <summary>A connection accepted on the listener bound to <paramref name="endPoint"/> (its address).</summary>
    public void Accepted(string endPoint) => _accepted.Add(1, new KeyValuePair<string, object?>("endpoint", endPoint));

    public void AcceptError(string error) => _acceptErrors.Add(1, new KeyValuePair<string, object?>("error", error));

    public void AcceptBackoff() => _acceptBackoffs.Add(1);

    public void HeldBack(string endPoint) => _heldBack.Add(1, new KeyValuePair<string, object?>("endpoint", endPoint));

    public void NotAccepting(string endPoint, int delta) => _notAccepting.Add(delta, new KeyValuePair<string, object?>("endpoint", endPoint));

    public void Refused(string reason) => _refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void TimedOut(string endpointName, string reason) =>
        _timedOut.Add(1, new KeyValuePair<string, object?>("endpoint.name", endpointName), new KeyValuePair<string, object?>("reason", reason));

    public void HandlerError(string endpointName, string errorType) =>
        _handlerErrors.Add(1, new KeyValuePair<string, object?>("endpoint.name", endpointName), new KeyValuePair<string, object?>("error.type", errorType));

    /// <summary>A hosted connection started, on the endpoint named <paramref name="endpointName"/> in configuration.</summary>
    public void ConnectionStarted(string endpointName) => _active.Add(1, new KeyValuePair<string, object?>("endpoint.name", endpointName));

    public void ConnectionEnded(string endpointName, long startTimestamp)
    {
        // The name, not the address (the tag of the transport's own counters): what configuration calls it.
        var endpointTag = new KeyValuePair<string, object?>("endpoint.name", endpointName);
        _active.Add(-1, endpointTag);
        _duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, endpointTag);
    }
}
