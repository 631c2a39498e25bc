using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

/// <summary>
/// <c>AddNetStreamHealthChecks()</c>: healthy while every bound endpoint accepts, degraded while one holds back for file
/// descriptors, unhealthy when one cannot accept; each endpoint and the descriptor headroom in the data.
/// </summary>
public sealed class HealthCheckTests
{
    [Fact]
    public async Task Endpoints_that_accept_are_healthy_and_an_unbound_one_is_no_longer_reported()
    {
        await using var services = Services();
        var factory = services.GetRequiredService<NetStreamTransportFactory>();
        var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), factory.Options);

        var report = await CheckAsync(services);
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal("accepting", report.Data[$"endpoint {listener.EndPoint}"]);
        Assert.True((long)report.Data["descriptors.limit"] > (int)report.Data["descriptors.open"]);

        await listener.DisposeAsync();
        report = await CheckAsync(services);
        Assert.DoesNotContain($"endpoint {listener.EndPoint}", report.Data.Keys);
        Assert.Equal("No NetStream endpoint is bound.", report.Description);
    }

    [Fact]
    public async Task An_endpoint_holding_back_for_descriptors_is_degraded()
    {
        await using var services = Services();
        var factory = services.GetRequiredService<NetStreamTransportFactory>();

        // A reserve of all but one descriptor: the accept loop holds back at once, as it would at the limit.
        var options = new NetStreamTransportOptions { DescriptorReserve = (int)Math.Min(DescriptorHeadroom.ReadLimit() - 1, int.MaxValue) };
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), options);
        var accepting = listener.AcceptAsync().AsTask();

        var report = await CheckAsync(services);
        Assert.Equal(HealthStatus.Degraded, report.Status);
        Assert.Equal("holding back: too few file descriptors free", report.Data[$"endpoint {listener.EndPoint}"]);

        await listener.UnbindAsync();
        Assert.Null(await accepting.WaitAsync(Listeners.Timeout));
    }

    [Fact]
    public async Task An_endpoint_that_cannot_accept_is_unhealthy()
    {
        await using var services = Services();
        var factory = services.GetRequiredService<NetStreamTransportFactory>();
        await using var listener = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0), factory.Options);

        // Its socket gone from under it while bound: nothing more can be accepted there.
        listener.Socket.Dispose();

        var report = await CheckAsync(services);
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        Assert.Contains("not accepting", report.Description);
    }

    private static ServiceProvider Services()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddNetStreamHealthChecks();
        return services.BuildServiceProvider();
    }

    private static async Task<HealthReportEntry> CheckAsync(IServiceProvider services)
    {
        var report = await services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        return report.Entries["netstream"];
    }
}
