using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Hooks;

/// <summary>Bedrock-style code: the factory and listener used directly, the hooks run with one call.</summary>
public sealed class BareListenerHookTests
{
    [Fact]
    public async Task One_call_runs_the_same_chain_on_a_connection_accepted_by_hand()
    {
        var services = BareServices.With();
        var passed = 0;
        services.AddNetStream().AddAcceptedHook(context =>
            ValueTask.FromResult(Interlocked.Increment(ref passed) == 1 ? AcceptedResult.Pass : AcceptedResult.Refuse("second_is_refused")));
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<NetStreamTransportFactory>();
        var chain = provider.GetRequiredService<AcceptedHookChain>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), factory.Options);

        var served = new List<AddressInfo?>();
        async Task ServeNextAsync()
        {
            var accepted = await listener.AcceptAsync(withAddressInfo: true);
            Assert.NotNull(accepted);
            await using var connection = accepted.Connection;
            await chain.RunAsync(accepted, async c =>
            {
                served.Add(c.Features.Get<AddressInfo>());
                await TestEcho.EchoAsync(c);
            });
        }

        var server = ServeNextAsync();
        Assert.Equal("hi"u8.ToArray(), await EchoClient.RoundTripAsync(listener.EndPoint, "hi"u8.ToArray()));
        await server.WaitAsync(Listeners.Timeout);

        server = ServeNextAsync();
        Assert.True(await EchoClient.IsTurnedAwayAsync(listener.EndPoint));
        await server.WaitAsync(Listeners.Timeout);

        // The address info the accept read is the one the application gets.
        var info = Assert.Single(served);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetwork, info!.Family);
        Assert.Equal(listener.EndPoint, info.LocalEndPoint);
        Assert.NotNull(info.RemoteEndPoint);
    }

    [Fact]
    public async Task The_per_endpoint_limit_counts_a_wildcard_listener_as_one_endpoint()
    {
        var services = BareServices.With(("NetStream:Hooks:MaxConnectionsPerEndpoint", "1"));
        services.AddNetStream();
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<NetStreamTransportFactory>();
        var chain = provider.GetRequiredService<AcceptedHookChain>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.IPv6Any, 0), factory.Options);
        var port = ((IPEndPoint)listener.EndPoint).Port;
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task ServeNextAsync()
        {
            var accepted = await listener.AcceptAsync(withAddressInfo: false);
            await using var connection = accepted!.Connection;
            await chain.RunAsync(accepted, async _ =>
            {
                holding.TrySetResult();
                await release.Task;
            });
        }

        // One connection through 127.0.0.1 holds the endpoint's only slot...
        var first = ServeNextAsync();
        using var v4 = await Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await holding.Task.WaitAsync(Listeners.Timeout);

        // ...so one through ::1, another local address of the same listener, is refused.
        var second = ServeNextAsync();
        Assert.True(await EchoClient.IsTurnedAwayAsync(new IPEndPoint(IPAddress.IPv6Loopback, port)));
        await second.WaitAsync(Listeners.Timeout);

        release.SetResult();
        await first.WaitAsync(Listeners.Timeout);
    }
}
