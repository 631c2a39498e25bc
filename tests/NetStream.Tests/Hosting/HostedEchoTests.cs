using System.Net;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

public sealed class HostedEchoTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var kind in new[] { "tcp4", "tcp6", "unix" })
        {
            foreach (var size in new[] { 1, 64 * 1024, 8 * 1024 * 1024 })
            {
                data.Add(kind, size);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Echo_returns_every_byte_exactly_then_closes(string kind, int size)
    {
        var url = kind switch
        {
            "tcp4" => "tcp://127.0.0.1:0",
            "tcp6" => "tcp://[::1]:0",
            _ => "unix:" + Path.Combine(Listeners.TempDirectory(), "e.sock"),
        };
        await using var host = await EchoHost.StartAsync(url);
        var data = EchoClient.RandomBytes(size);

        var echoed = await EchoClient.RoundTripAsync(host.EndPoint, data);

        Assert.Equal(data.Length, echoed.Length);
        Assert.True(data.AsSpan().SequenceEqual(echoed), "the echo differs from what was sent");
    }

    [Fact]
    public async Task Port_zero_endpoints_report_the_ports_the_kernel_chose()
    {
        await using var host = await EchoHost.StartAsync("tcp://127.0.0.1:0", "tcp://[::1]:0");

        Assert.Equal(2, host.EndPoints.Count);
        Assert.All(host.EndPoints, e => Assert.NotEqual(0, Assert.IsType<IPEndPoint>(e).Port));
        Assert.Equal(IPAddress.Loopback, ((IPEndPoint)host.EndPoints[0]).Address);
        Assert.Equal(IPAddress.IPv6Loopback, ((IPEndPoint)host.EndPoints[1]).Address);
    }

    [Fact]
    public async Task Two_hundred_concurrent_clients_all_get_their_own_bytes_back()
    {
        await using var host = await EchoHost.StartAsync("tcp://127.0.0.1:0");
        var payloads = Enumerable.Range(0, 200).Select(i => EchoClient.RandomBytes(2048 + (i * 37))).ToArray();

        var echoes = await Task.WhenAll(payloads.Select(p => Task.Run(() => EchoClient.RoundTripAsync(host.EndPoint, p))));

        for (var i = 0; i < payloads.Length; i++)
        {
            Assert.True(payloads[i].AsSpan().SequenceEqual(echoes[i]), $"client {i} got a different echo");
        }
    }
}
