using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>
/// What the hosted server logs when a handler ends with an exception: a peer's reset is the peer's doing (Debug,
/// counted), and real failures are warned about a bounded number of times a second, all counted.
/// </summary>
public sealed class HandlerFailureLoggingTests
{
    [Fact]
    public async Task Peers_that_reset_while_the_handler_reads_are_logged_at_debug_and_counted_not_warned_about()
    {
        const int Peers = 40;
        var logs = new LogRecorder();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["Logging:LogLevel:NetStream.Hosting"] = "Debug";
        await using var host = await EchoHost.StartAsync(settings, netStream: ns => ns.Services.AddSingleton<ILoggerProvider>(logs));
        using var errors = new InstrumentRecorder(host.Host.Services, "netstream.handler.errors", "error.type");
        using var acceptErrors = new InstrumentRecorder(host.Host.Services, "netstream.accept.errors", "error.type");

        // Connected, then reset with nothing sent: the echo handler is waiting in a read, which the reset fails; or,
        // reset before the accept took it, the accept fails with ECONNABORTED (an engine that asks the descriptor for
        // its peer finds none), retried at once.
        for (var i = 0; i < Peers; i++)
        {
            using var peer = await Listeners.ConnectAsync(host.EndPoint);
            peer.LingerState = new LingerOption(true, 0);
        }

        await InstrumentRecorder.WaitUntilAsync(() => errors.Sum("connection_reset") + acceptErrors.Sum("ECONNABORTED") == Peers);
        await logs.WaitUntilAsync(entries => entries.Count(e => e.EventId == 111) == errors.Sum("connection_reset"), Listeners.Timeout);
        Assert.All(logs.Entries.Where(e => e.EventId == 111), e => Assert.Equal(LogLevel.Debug, e.Level));
        Assert.DoesNotContain(logs.Entries, e => e.EventId == 104);
        Assert.Equal(0, errors.Sum("exception"));
    }

    [Fact]
    public async Task A_handler_cancelled_by_ConnectionClosed_is_not_a_handler_failure()
    {
        const int Peers = 10;
        var logs = new LogRecorder();
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["Logging:LogLevel:NetStream.Hosting"] = "Debug";
        await using var host = await EchoHost.StartAsync(
            settings,
            pipeline: b => b.Run(c => Task.Delay(Timeout.Infinite, c.ConnectionClosed)),
            netStream: ns => ns.Services.AddSingleton<ILoggerProvider>(logs));
        using var errors = new InstrumentRecorder(host.Host.Services, "netstream.handler.errors", "error.type");
        using var acceptErrors = new InstrumentRecorder(host.Host.Services, "netstream.accept.errors", "error.type");

        for (var i = 0; i < Peers; i++)
        {
            using var peer = await Listeners.ConnectAsync(host.EndPoint);
            peer.LingerState = new LingerOption(true, 0);
        }

        await InstrumentRecorder.WaitUntilAsync(() => errors.Sum("connection_aborted") + acceptErrors.Sum("ECONNABORTED") == Peers);
        Assert.DoesNotContain(logs.Entries, e => e.EventId == 104);
        Assert.Equal(0, errors.Sum("exception"));
    }

    [Fact]
    public async Task A_flood_of_handler_failures_is_warned_about_so_many_a_second_and_counted_in_full()
    {
        const int Clients = 120;
        var logs = new LogRecorder();
        await using var host = await EchoHost.StartAsync(
            EchoHost.Endpoints("tcp://127.0.0.1:0"),
            server => server.Run(_ => throw new InvalidOperationException("handler failure (expected by the test)")),
            ns => ns.Services.AddSingleton<ILoggerProvider>(logs));
        using var errors = new InstrumentRecorder(host.Host.Services, "netstream.handler.errors", "error.type");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => EchoClient.IsTurnedAwayAsync(host.EndPoint)));
        await errors.WaitForSumAsync("exception", Clients);

        var seconds = (int)clock.Elapsed.TotalSeconds + 1;
        var warned = logs.Entries.Count(e => e.EventId == 104);
        Assert.InRange(warned, 1, 20 * seconds);
        Assert.All(logs.Entries.Where(e => e.EventId == 104), e => Assert.Equal(LogLevel.Warning, e.Level));

        // The rest are summed up at the end of their second.
        await logs.WaitUntilAsync(entries => warned + LogRecorder.HeldBack(entries, 112) == Clients, Listeners.Timeout);
    }

}
