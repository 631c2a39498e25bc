using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Transport;

/// <summary>
/// The factory made the ways Bedrock-style code makes it, outside a host: with <c>new</c>, from a bare service collection,
/// and by <c>ActivatorUtilities</c> (what Bedrock's <c>ServerBuilder.Listen&lt;T&gt;</c> does) from a container that only
/// called <c>AddNetStream()</c>.
/// </summary>
public sealed class ConstructionTests
{
    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 0);

    [Fact]
    public async Task A_factory_made_with_new_and_nothing_else_serves()
    {
        var factory = new NetStreamTransportFactory();

        await AssertServesAsync(factory);
    }

    [Fact]
    public async Task A_factory_made_from_plain_options_binds_with_them()
    {
        var factory = new NetStreamTransportFactory(new NetStreamTransportOptions { Backlog = 7 });

        await using var listener = (NetStreamListener)await factory.BindAsync(Loopback);

        Assert.Equal(7, listener.Backlog);
    }

    [Fact]
    public async Task Options_made_in_code_are_checked_at_bind_naming_the_key_and_the_value()
    {
        var factory = new NetStreamTransportFactory(new NetStreamTransportOptions { Backlog = -3, EngineThreads = 0 });

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => factory.BindAsync(Loopback).AsTask());

        Assert.Contains("NetStream:Backlog = '-3'", error.Message);
        Assert.Contains("NetStream:EngineThreads = '0'", error.Message);
    }

    [Fact]
    public async Task A_factory_made_without_a_container_runs_the_new_connection_hook_it_was_given()
    {
        var hook = new CountingHook();
        var factory = new NetStreamTransportFactory(new NetStreamTransportOptions(), hook);

        await AssertServesAsync(factory);

        Assert.Equal(1, hook.Calls);
    }

    [Fact]
    public async Task AddNetStream_in_a_bare_service_collection_gives_a_working_factory()
    {
        // No configuration, no logging, no host: nothing but AddNetStream.
        await using var services = new ServiceCollection().AddNetStream().Services.BuildServiceProvider();

        await AssertServesAsync(services.GetRequiredService<NetStreamTransportFactory>());
    }

    [Fact]
    public async Task ActivatorUtilities_makes_the_factory_from_a_container_that_only_called_AddNetStream()
    {
        var hook = new CountingHook();
        var collection = new ServiceCollection();
        collection.AddNetStream();
        collection.AddSingleton<INewConnectionHook>(hook);
        await using var services = collection.BuildServiceProvider();

        var factory = ActivatorUtilities.CreateInstance<NetStreamTransportFactory>(services);

        await AssertServesAsync(factory);
        Assert.Equal(1, hook.Calls);
    }

    private static async Task AssertServesAsync(NetStreamTransportFactory factory)
    {
        await using var listener = await factory.BindAsync(Loopback);
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        await client.SendAsync("ping"u8.ToArray());
        var read = await connection.Transport.Input.ReadAsync(Listeners.TimeoutToken());
        Assert.Equal("ping"u8.ToArray(), System.Buffers.BuffersExtensions.ToArray(read.Buffer));
        connection.Transport.Input.AdvanceTo(read.Buffer.End);
        await connection.Transport.Output.WriteAsync("pong"u8.ToArray());
        Assert.Equal("pong"u8.ToArray(), await Listeners.ReceiveAsync(client, 4));
    }

    private sealed class CountingHook : INewConnectionHook
    {
        public int Calls;

        public ConnectionContext NewConnection(Socket socket, NewConnectionContext context)
        {
            Interlocked.Increment(ref Calls);
            return context.CreateDefault(socket);
        }
    }
}
