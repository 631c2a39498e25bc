using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
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
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().Build())
            .AddLogging();
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
}
