using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// Records the measurements of one NetStream instrument of one host only (each host has its own meter factory, and
/// tests run in parallel), summed by the value of one tag.
/// </summary>
internal sealed class InstrumentRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();

    public InstrumentRecorder(IServiceProvider services, string instrumentName, string tagKey)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == instrumentName && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == tagKey)
                {
                    _sums.AddOrUpdate(tag.Value?.ToString() ?? string.Empty, value, (_, sum) => sum + value);
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The sum of the measurements whose tag had <paramref name="tagValue"/>.</summary>
    public long Sum(string tagValue) => _sums.GetValueOrDefault(tagValue);

    /// <summary>Waits until the sum for <paramref name="tagValue"/> reaches <paramref name="expected"/>.</summary>
    public Task WaitForSumAsync(string tagValue, long expected) => WaitUntilAsync(() => Sum(tagValue) >= expected);

    /// <summary>Waits until <paramref name="condition"/> on the recorded sums holds.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        while (!condition())
        {
            // A measurement has no event to wait on here: polled, bounded by the timeout.
            await Task.Delay(20, timeout.Token);
        }
    }

    public void Dispose() => _listener.Dispose();
}
