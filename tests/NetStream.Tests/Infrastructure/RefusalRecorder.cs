using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// Records <c>netstream.connections.refused</c> of one host only (tests run in parallel, each host has its own
/// meter factory), so a test can wait for a refusal and read its reason.
/// </summary>
internal sealed class RefusalRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Channel<string> _reasons = Channel.CreateUnbounded<string>();

    public RefusalRecorder(IServiceProvider services)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "netstream.connections.refused" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "error.type")
                {
                    _reasons.Writer.TryWrite(tag.Value?.ToString() ?? string.Empty);
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Whether no refusal is waiting to be read.</summary>
    public bool IsEmpty => !_reasons.Reader.TryPeek(out _);

    /// <summary>Waits for the next refusal and returns its reason.</summary>
    public async Task<string> NextAsync()
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        return await _reasons.Reader.ReadAsync(timeout.Token);
    }

    public void Dispose() => _listener.Dispose();
}
