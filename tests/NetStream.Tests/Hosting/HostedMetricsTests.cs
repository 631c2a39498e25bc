using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

public sealed class HostedMetricsTests
{
    [Fact]
    public async Task One_echo_connection_records_accepted_active_and_duration()
    {
        var name = "M" + Guid.NewGuid().ToString("N")[..8];
        var measurements = new ConcurrentQueue<(string Instrument, double Value, string? Endpoint)>();
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
            string? endpoint = null;
            foreach (var tag in tags)
            {
                if (tag.Key is "endpoint" or "endpoint.name")
                {
                    endpoint = tag.Value?.ToString();
                }
            }

            measurements.Enqueue((instrument.Name, value, endpoint));
            if (instrument.Name == "netstream.connection.duration" && endpoint == name)
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
        var bound = host.EndPoint.ToString();
        Assert.Single(all, m => m.Instrument == "netstream.connections.accepted" && m.Endpoint == bound && m.Value == 1);
        var active = all.Where(m => m.Instrument == "netstream.connections.active" && m.Endpoint == name).Select(m => m.Value).ToArray();
        Assert.Equal([1d, -1d], active);
        var duration = Assert.Single(all, m => m.Instrument == "netstream.connection.duration" && m.Endpoint == name);
        Assert.InRange(duration.Value, 0, Listeners.Timeout.TotalSeconds);
    }
}
