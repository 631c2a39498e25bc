using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Kestrel;

public sealed class TransportIdentityTests
{
    [Fact]
    public async Task Kestrel_connections_are_made_by_netstream_not_the_sockets_transport()
    {
        using var timeout = KestrelApp.Timeout();

        // Connection middleware sees the transport's own ConnectionContext, before Kestrel's HTTP layer.
        var transportTypes = new ConcurrentDictionary<string, Type>();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            a => a.Run(context => context.Response.WriteAsync(context.Connection.Id)),
            timeout.Token,
            l => l.Use(next => connection =>
            {
                transportTypes[connection.ConnectionId] = connection.GetType();
                return next(connection);
            }));
        using var client = app.CreateClient();

        var connectionId = await client.GetStringAsync("/", timeout.Token);

        Assert.True(transportTypes.TryGetValue(connectionId, out var type), $"no transport connection with id {connectionId}");
        Assert.Equal(typeof(NetStreamConnection), type);
    }

    [Fact]
    public async Task Request_reaches_the_accepted_socket_through_the_connection_socket_feature()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            a => a.Run(context =>
            {
                var socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
                return context.Response.WriteAsync(socket is null
                    ? "none"
                    : $"{socket.AddressFamily} {socket.SocketType} {socket.NoDelay} {socket.RemoteEndPoint}");
            }),
            timeout.Token);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(app.EndPoint, timeout.Token);
        using var http = app.CreateClient(new SocketsHttpHandler { ConnectCallback = (_, _) => ValueTask.FromResult<Stream>(new NetworkStream(client)) });

        var answer = await http.GetStringAsync("/", timeout.Token);

        Assert.Equal($"{AddressFamily.InterNetwork} {SocketType.Stream} True {client.LocalEndPoint}", answer);
    }
}
