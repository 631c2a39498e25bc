using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Transport;

/// <summary>What a listener says about itself and about failures a peer can cause at will.</summary>
public sealed class ListenerHealthTests
{
    [Fact]
    public async Task IsListening_is_false_not_an_exception_once_the_socket_is_closed_under_it()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        Assert.True(listener.IsListening);

        // What an unbind racing the property does: the socket is gone between its check and its getsockopt.
        listener.Socket.Dispose();

        Assert.False(listener.IsListening);
    }

    [Fact]
    public async Task New_connection_failures_are_logged_so_many_a_second_and_counted_in_full()
    {
        const int Clients = 100;
        var logs = new LogRecorder();
        await using var host = await EchoHost.StartAsync(EchoHost.Endpoints("tcp://127.0.0.1:0"), netStream: ns =>
        {
            ns.Services.AddSingleton<ILoggerProvider>(logs);
            ns.Services.AddSingleton<INewConnectionHook>(new AlwaysFails());
        });
        using var refusals = new InstrumentRecorder(host.Host.Services, "netstream.connections.refused", "error.type");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => EchoClient.IsTurnedAwayAsync(host.EndPoint)));
        await refusals.WaitForSumAsync("new_connection_failed", Clients);

        var seconds = (int)clock.Elapsed.TotalSeconds + 1;
        var logged = logs.Entries.Count(e => e.EventId == 6);
        Assert.InRange(logged, 1, AcceptedHookChain.RefusalLogsPerSecond * seconds);
        await logs.WaitUntilAsync(entries => logged + LogRecorder.HeldBack(entries, 27) == Clients, Listeners.Timeout);
    }

    [Fact]
    public async Task A_refused_connection_whose_close_fails_is_logged_as_that_not_as_a_failed_dispose()
    {
        var logs = new LogRecorder();
        await using var host = await EchoHost.StartAsync(EchoHost.Endpoints("tcp://127.0.0.1:0"), netStream: ns =>
        {
            ns.Services.AddSingleton<ILoggerProvider>(logs);
            ns.AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(new AbortThrows(context.Connection))))
                .AddAcceptedHook(_ => ValueTask.FromResult(AcceptedResult.Refuse("no", RefusalMode.Reset)));
        });

        Assert.True(await EchoClient.IsTurnedAwayAsync(host.EndPoint));

        await logs.WaitUntilAsync(entries => entries.Any(e => e.EventId == 22), Listeners.Timeout);
        var entry = logs.Entries.Single(e => e.EventId == 22);
        Assert.Contains("refused by an accepted hook, failed", entry.Message);
        Assert.IsType<InvalidOperationException>(entry.Exception);
    }

    private sealed class AlwaysFails : INewConnectionHook
    {
        public ConnectionContext NewConnection(System.Net.Sockets.Socket socket, NewConnectionContext context) =>
            throw new InvalidOperationException("new_connection failure (expected by the test)");
    }

    /// <summary>A replacement whose Abort fails, as application code may.</summary>
    private sealed class AbortThrows(ConnectionContext inner) : ConnectionContext
    {
        public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }

        public override Microsoft.AspNetCore.Http.Features.IFeatureCollection Features => inner.Features;

        public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }

        public override System.IO.Pipelines.IDuplexPipe Transport { get => inner.Transport; set => inner.Transport = value; }

        public override EndPoint? RemoteEndPoint { get => inner.RemoteEndPoint; set => inner.RemoteEndPoint = value; }

        public override void Abort(ConnectionAbortedException abortReason) => throw new InvalidOperationException("abort failure (expected by the test)");
    }
}
