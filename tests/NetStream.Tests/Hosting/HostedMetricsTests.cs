using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

public sealed class HostedMetricsTests
{
    [Fact]
    public async Task One_echo_connection_records_accepted_active_and_duration()
    {
        var name = "M" + Guid.NewGuid().ToString("N")[..8];
        var measurements = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, string?> Tags)>();
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "NetStream" && instrument.Name is "netstream.connections.accepted" or "netstream.connections.active" or "netstream.connection.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var named = new Dictionary<string, string?>();
            foreach (var tag in tags)
            {
                named[tag.Key] = tag.Value?.ToString();
            }

            measurements.Enqueue((instrument.Name, value, named));
            if (instrument.Name == "netstream.connection.duration" && named.GetValueOrDefault("netstream.endpoint.name") == name)
            {
                ended.TrySetResult();
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        await using var host = await EchoHost.StartAsync(new Dictionary<string, string?> { [$"NetStream:Endpoints:{name}:Url"] = "tcp://127.0.0.1:0" });
        Assert.Equal("m"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "m"u8.ToArray()));
        await ended.Task.WaitAsync(Listeners.Timeout);

        var all = measurements.ToArray();
        var port = ((IPEndPoint)host.EndPoint).Port.ToString(CultureInfo.InvariantCulture);
        // OpenTelemetry's semantic conventions, as Kestrel tags its own connection metrics.
        bool OnTheEndpoint(Dictionary<string, string?> tags) =>
            tags.GetValueOrDefault("network.transport") == "tcp" && tags.GetValueOrDefault("network.type") == "ipv4" &&
            tags.GetValueOrDefault("server.address") == "127.0.0.1" && tags.GetValueOrDefault("server.port") == port;
        var accepted = Assert.Single(all, m => m.Instrument == "netstream.connections.accepted" && OnTheEndpoint(m.Tags));
        Assert.Equal(1, accepted.Value);
        Assert.False(accepted.Tags.ContainsKey("netstream.endpoint.name")); // the transport's counters know no names
        var active = all.Where(m => m.Instrument == "netstream.connections.active" && OnTheEndpoint(m.Tags) && m.Tags["netstream.endpoint.name"] == name).Select(m => m.Value).ToArray();
        Assert.Equal([1d, -1d], active);
        var duration = Assert.Single(all, m => m.Instrument == "netstream.connection.duration" && OnTheEndpoint(m.Tags) && m.Tags["netstream.endpoint.name"] == name);
        Assert.InRange(duration.Value, 0, Listeners.Timeout.TotalSeconds);
    }
}
