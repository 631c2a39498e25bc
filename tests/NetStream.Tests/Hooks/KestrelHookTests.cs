using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Hooks;

public sealed class KestrelHookTests
{
    private static readonly IPEndPoint Client = new(IPAddress.Parse("203.0.113.7"), 4242);

    private static void EchoRemoteAddress(WebApplication app) =>
        app.Run(context => context.Response.WriteAsync($"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}"));

    private static Task<KestrelApp> StartAsync(Action<NetStreamBuilder> hooks, CancellationToken cancellationToken, Action<KestrelServerOptions>? kestrel = null) =>
        KestrelApp.StartAsync(
            kestrel ?? (options => options.Listen(IPAddress.Loopback, 0)),
            EchoRemoteAddress,
            cancellationToken,
            configureBuilder: builder => hooks(builder.Services.AddNetStream()));

    [Fact]
    public async Task Hooks_run_in_order_and_HttpContext_sees_the_replacement_connection()
    {
        using var timeout = KestrelApp.Timeout();
        var journal = new Journal();
        await using var app = await StartAsync(
            ns =>
            {
                ns.AddFirstHook(journal)
                  .AddAcceptedHook<SecondHook>()
                  .AddAcceptedHook(context => ValueTask.FromResult(AcceptedResult.Replace(new ProxiedConnection(context.Connection, Client))));
            },
            timeout.Token);
        using var client = app.CreateClient();

        Assert.Equal(Client.ToString(), await client.GetStringAsync("/", timeout.Token));
        Assert.Equal(["first", "second"], journal.Entries);
    }

    [Fact]
    public async Task A_refused_connection_gets_no_HTTP_response_and_is_counted()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await StartAsync(ns => ns.Configure(o => o.Hooks.Deny.Add("127.0.0.0/8")), timeout.Token);
        using var refusals = new RefusalRecorder(app.App.Services);
        using var client = app.CreateClient();

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync("/", timeout.Token));
        Assert.Equal("ip_denied", await refusals.NextAsync());
    }

    [Fact]
    public async Task A_users_own_endpoint_defaults_do_not_drop_the_hooks()
    {
        using var timeout = KestrelApp.Timeout();
        var journal = new Journal();
        await using var app = await StartAsync(
            ns => ns.AddFirstHook(journal),
            timeout.Token,
            kestrel =>
            {
                // Last writer wins in Kestrel: this replaces the defaults UseNetStream() set.
                kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http1);
                kestrel.Listen(IPAddress.Loopback, 0);
            });
        using var client = app.CreateClient();

        Assert.Equal("127.0.0.1", (await client.GetStringAsync("/", timeout.Token)).Split(':')[0]);
        Assert.Equal(["first"], journal.Entries);
    }

    [Fact]
    public async Task Endpoints_from_Kestrel_configuration_run_the_hooks_once()
    {
        using var timeout = KestrelApp.Timeout();
        var journal = new Journal();
        await using var app = await KestrelApp.StartAsync(
            kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.UseNetStreamHooks()),
            EchoRemoteAddress,
            timeout.Token,
            configureBuilder: builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0" });
                builder.Services.AddNetStream().AddFirstHook(journal);
            });
        using var client = app.CreateClient();

        await client.GetStringAsync("/", timeout.Token);
        Assert.Equal(["first"], journal.Entries);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_chain_runs_first_unless_the_endpoint_places_it_explicitly(bool placeExplicitly)
    {
        using var timeout = KestrelApp.Timeout();
        var journal = new Journal();
        await using var app = await StartAsync(
            ns => ns.AddFirstHook(journal),
            timeout.Token,
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Use(next => connection =>
                {
                    journal.Add("endpoint middleware");
                    return next(connection);
                });
                if (placeExplicitly)
                {
                    listen.UseNetStreamHooks();
                }
            }));
        using var client = app.CreateClient();

        await client.GetStringAsync("/", timeout.Token);
        Assert.Equal(placeExplicitly ? ["endpoint middleware", "first"] : ["first", "endpoint middleware"], journal.Entries);
    }

    [Theory]
    [InlineData("new_connection")]
    [InlineData("accepted")]
    public async Task A_throwing_hook_costs_only_its_own_connection(string which)
    {
        using var timeout = KestrelApp.Timeout();
        var calls = 0;
        bool FirstCall() => Interlocked.Increment(ref calls) == 1;
        await using var app = await StartAsync(
            ns =>
            {
                if (which == "new_connection")
                {
                    ns.Services.AddSingleton<INewConnectionHook>(new ThrowingOnce(FirstCall));
                }
                else
                {
                    ns.AddAcceptedHook(_ => FirstCall() ? throw new InvalidOperationException("hook bug") : ValueTask.FromResult(AcceptedResult.Pass));
                }
            },
            timeout.Token);
        using var refusals = new RefusalRecorder(app.App.Services);

        // A raw client: HttpClient would quietly retry a GET on a new connection.
        Assert.True(await NetStream.Tests.Hosting.EchoClient.IsTurnedAwayAsync(app.EndPoint));

        Assert.Equal(which == "new_connection" ? "new_connection_failed" : "hook_failed", await refusals.NextAsync());
        using var second = app.CreateClient();
        Assert.StartsWith("127.0.0.1:", await second.GetStringAsync("/", timeout.Token));
    }

    [Fact]
    public async Task A_hanging_hook_on_one_connection_does_not_stop_a_hundred_clients_being_served()
    {
        using var timeout = KestrelApp.Timeout();
        var hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hanging = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        await using var app = await StartAsync(
            ns => ns.Configure(o => o.Hooks.Timeout = System.Threading.Timeout.InfiniteTimeSpan).AddAcceptedHook(async _ =>
            {
                if (Interlocked.Increment(ref calls) == 1)
                {
                    hanging.SetResult();
                    await hang.Task;
                }

                return AcceptedResult.Pass;
            }),
            timeout.Token);

        using var stuck = app.CreateClient();
        var stuckRequest = stuck.GetStringAsync("/", timeout.Token);
        await hanging.Task.WaitAsync(timeout.Token);

        // One client each: a hundred connections, all while the first one's hook hangs.
        var others = Enumerable.Range(0, 100).Select(async _ =>
        {
            using var client = app.CreateClient();
            return await client.GetStringAsync("/", timeout.Token);
        });
        Assert.All(await Task.WhenAll(others), body => Assert.StartsWith("127.0.0.1:", body));
        Assert.False(stuckRequest.IsCompleted);

        hang.SetResult();
        Assert.StartsWith("127.0.0.1:", await stuckRequest);
    }

    private sealed class ThrowingOnce(Func<bool> shouldThrow) : INewConnectionHook
    {
        public Microsoft.AspNetCore.Connections.ConnectionContext NewConnection(Socket socket, NewConnectionContext context) =>
            shouldThrow() ? throw new InvalidOperationException("new_connection bug") : context.CreateDefault(socket);
    }

    [Fact]
    public async Task A_per_IP_slot_is_free_when_the_peer_sees_its_connection_end()
    {
        // A client that makes one connection at a time and reconnects on the FIN that ends the last one (after a
        // Connection: close reply) is never refused by a limit of one.
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            options => options.Listen(IPAddress.Loopback, 0),
            web => web.Run(context =>
            {
                context.Response.Headers.Connection = "close";
                return context.Response.WriteAsync("ok");
            }),
            timeout.Token,
            configureBuilder: builder => builder.Services.AddNetStream().Configure(o => o.Hooks.MaxConnectionsPerIp = 1));
        var request = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray();

        for (var i = 0; i < 40; i++)
        {
            using var socket = await Listeners.ConnectAsync(app.EndPoint);
            await socket.SendAsync(request, SocketFlags.None, timeout.Token);
            var reply = await Listeners.ReceiveAsync(socket, 4096);
            Assert.StartsWith("HTTP/1.1 200 OK", System.Text.Encoding.ASCII.GetString(reply), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_peer_that_closes_mid_request_holds_its_per_IP_slot_while_the_request_runs()
    {
        // Kestrel aborts the connection when its peer goes away; a handler that does not stop for that still holds
        // the connection, and the peer must not get more running requests than the limit by connecting again.
        using var timeout = KestrelApp.Timeout();
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await KestrelApp.StartAsync(
            options => options.Listen(IPAddress.Loopback, 0),
            web => web.Run(async context =>
            {
                context.RequestAborted.Register(() => aborted.TrySetResult());
                running.TrySetResult();
                await release.Task;
            }),
            timeout.Token,
            configureBuilder: builder => builder.Services.AddNetStream().Configure(o => o.Hooks.MaxConnectionsPerIp = 1));
        using var refusals = new RefusalRecorder(app.App.Services);
        try
        {
            using (var first = await Listeners.ConnectAsync(app.EndPoint))
            {
                await first.SendAsync("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"u8.ToArray(), SocketFlags.None, timeout.Token);
                await running.Task.WaitAsync(timeout.Token);
            }

            await aborted.Task.WaitAsync(timeout.Token);

            Assert.True(await Hosting.EchoClient.IsTurnedAwayAsync(app.EndPoint));
            Assert.Equal("ip_limit", await refusals.NextAsync());
        }
        finally
        {
            release.TrySetResult();
        }
    }
}
