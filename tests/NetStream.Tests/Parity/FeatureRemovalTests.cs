using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Parity;

/// <summary>
/// <c>Features.Set&lt;T&gt;(null)</c> removes a feature (IFeatureCollection's contract, and what Kestrel's
/// TransportConnection does): e.g. middleware that takes over the transport hides the raw socket from what follows.
/// </summary>
public sealed class FeatureRemovalTests
{
    [Theory]
    [InlineData(false)] // Kestrel's Sockets transport: the control
    [InlineData(true)]  // NetStream
    public async Task A_transport_feature_set_to_null_is_gone(bool netStream)
    {
        using var timeout = KestrelApp.Timeout();
        var builder = TransportUnderTest.Builder(netStream);

        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Use(next => connection =>
        {
            connection.Features.Set<IConnectionSocketFeature>(null);
            return next(connection);
        })));
        await using var app = builder.Build();
        app.Run(c => c.Response.WriteAsync(c.Features.Get<IConnectionSocketFeature>() is null ? "hidden" : "socket still exposed"));
        await app.StartAsync(timeout.Token);
        var address = TransportUnderTest.Address(app).ToString();
        using var client = new HttpClient { Timeout = KestrelApp.TestTimeout };

        Assert.Equal("hidden", await client.GetStringAsync(address, timeout.Token));
        await app.StopAsync(timeout.Token);
    }
}
