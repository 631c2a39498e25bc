using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// Listener handoff in a host (<see cref="HandoffOptions.Path"/> set): once the host has started, tells the predecessor
/// (if this process took its sockets) and then offers this process's own sockets to its successor.
/// </summary>
internal sealed class HandoffService(
    NetStreamTransportFactory factory,
    ListenerRegistry listeners,
    IHostApplicationLifetime lifetime,
    IOptions<NetStreamTransportOptions> options,
    NetStreamMetrics metrics,
    HandoffDrain drain,
    ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    private CancellationTokenRegistration _started;
    private CancellationTokenRegistration _stopped;
    private HandoffServer? _server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Handoff is { Path: { } path } handoff)
        {
            _started = lifetime.ApplicationStarted.Register(() =>
            {
                factory.HandoffStarted();
                var logger = loggerFactory.CreateLogger("NetStream.Transport");
                _server = new HandoffServer(path, handoff.Timeout, listeners, drain, lifetime.StopApplication, logger, metrics, lifetime.ApplicationStopping);
                try
                {
                    _server.Start();
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
                {
                    Log.HandoffAborted(logger, Environment.ProcessId, $"cannot listen at {path} for a successor: {e.Message}");
                }
            });
            _stopped = lifetime.ApplicationStopped.Register(() =>
            {
                if (_server is { CompletedAt: > 0 } server)
                {
                    metrics.HandoffDrained(System.Diagnostics.Stopwatch.GetElapsedTime(server.CompletedAt));
                }
            });
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _started.Dispose();
        _stopped.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
