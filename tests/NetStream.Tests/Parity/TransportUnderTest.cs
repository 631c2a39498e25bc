using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace NetStream.Tests.Parity;

/// <summary>
/// One scenario, two transports: NetStream, and Kestrel's Sockets transport as the control that shows what Kestrel
/// users already get.
/// </summary>
internal static class TransportUnderTest
{
    /// <summary>A slim app on NetStream (<paramref name="netStream"/>) or on the Sockets transport, with no log providers.</summary>
    public static WebApplicationBuilder Builder(bool netStream)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (netStream)
        {
            builder.WebHost.UseNetStream();
        }
        else
        {
            builder.WebHost.UseSockets();
        }

        return builder;
    }

    /// <summary>The address a started app listens on, port 0 resolved.</summary>
    public static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
}
