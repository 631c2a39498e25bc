using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NetStream.Hosting.Internal;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

public sealed class AcceptShardsTests
{
    [Fact]
    public async Task A_hosted_endpoint_with_shards_listens_on_that_many_sockets_of_one_port_and_all_of_them_serve()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:AcceptShards"] = "4";
        await using var host = await EchoHost.StartAsync(settings);
        var shards = host.Host.Services.GetServices<IHostedService>().OfType<NetStreamServer>().Single().AllListeners;
        var port = ((IPEndPoint)host.EndPoint).Port;

        Assert.Equal(4, shards.Count);
        Assert.All(shards, shard => Assert.Equal(port, ((IPEndPoint)shard.EndPoint).Port));
        Assert.All(shards, shard => Assert.Equal(1, SocketConfigurator.GetRawInt(shard.Socket, SocketOptionNames.SolSocket, SocketOptionNames.SoReusePort)));
        Assert.Equal(4, ListeningSocketsOn(port));

        // New connections come from new source ports: the kernel's hash spreads them over the group.
        const int Clients = 40;
        for (var i = 0; i < Clients; i++)
        {
            var payload = BitConverter.GetBytes(i);
            Assert.Equal(payload, await EchoClient.RoundTripAsync(host.EndPoint, payload));
        }

        await InstrumentRecorder.WaitUntilAsync(() => shards.Sum(s => s.AcceptedCount) == Clients);
        Assert.True(shards.Count(s => s.AcceptedCount > 0) >= 2, $"accepted per shard: {string.Join(", ", shards.Select(s => s.AcceptedCount))}");

        await host.StopAsync();
        Assert.Equal(0, ListeningSocketsOn(port));
    }

    [Fact]
    public async Task Kestrel_serves_from_a_group_of_shards()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0),
            web => web.MapGet("/", () => "sharded"),
            timeout.Token,
            options => options.AcceptShards = 3);
        Assert.Equal(3, ListeningSocketsOn(app.EndPoint.Port));
        using var http = new HttpClient { BaseAddress = app.BaseAddress };
        http.DefaultRequestHeaders.ConnectionClose = true;

        for (var i = 0; i < 30; i++)
        {
            Assert.Equal("sharded", await http.GetStringAsync("/", timeout.Token));
        }
    }

    [Fact]
    public async Task A_unix_socket_endpoint_has_one_socket_whatever_AcceptShards_says()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "s");
        var settings = EchoHost.Endpoints($"unix:{path}");
        settings["NetStream:AcceptShards"] = "4";
        await using var host = await EchoHost.StartAsync(settings);

        Assert.Single(host.Host.Services.GetServices<IHostedService>().OfType<NetStreamServer>().Single().AllListeners);
        Assert.Equal("u"u8.ToArray(), await EchoClient.RoundTripAsync(new UnixDomainSocketEndPoint(path), "u"u8.ToArray()));
    }

    /// <summary>TCP sockets listening on <paramref name="port"/> in this network namespace (<c>/proc/net/tcp</c> and <c>tcp6</c>, state 0A).</summary>
    internal static int ListeningSocketsOn(int port)
    {
        var hexPort = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
        return new[] { "/proc/net/tcp", "/proc/net/tcp6" }
            .SelectMany(File.ReadLines)
            .Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(fields => fields.Length > 3 && fields[1].EndsWith(hexPort, StringComparison.Ordinal) && fields[3] == "0A");
    }
}
