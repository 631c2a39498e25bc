using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Plugs NetStream into Kestrel. In this namespace, like Kestrel's <c>UseSockets</c>, so no new <c>using</c> is needed.</summary>
public static class NetStreamWebHostBuilderExtensions
{
    /// <summary>
    /// Makes Kestrel bind its TCP, Unix socket and file-handle endpoints with NetStream. The transport's options are
    /// bound from the <c>NetStream</c> configuration section; Kestrel's endpoints stay in <c>Kestrel:Endpoints</c>, and
    /// one of them takes options of its own from a <c>NetStream</c> section inside it
    /// (<c>Kestrel:Endpoints:Api:NetStream:Engine = Sockets</c>). Every endpoint runs the <c>accepted</c> hooks first in
    /// its connection middleware.
    /// </summary>
    /// <param name="hostBuilder">The web host builder.</param>
    public static IWebHostBuilder UseNetStream(this IWebHostBuilder hostBuilder) => hostBuilder.UseNetStream(static _ => { });

    /// <summary>Makes Kestrel use NetStream, with options changed in code after configuration is bound.</summary>
    /// <param name="hostBuilder">The web host builder.</param>
    /// <param name="configure">Changes the transport options.</param>
    public static IWebHostBuilder UseNetStream(this IWebHostBuilder hostBuilder, Action<NetStreamTransportOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        ArgumentNullException.ThrowIfNull(configure);
        return hostBuilder.ConfigureServices(services =>
        {
            services.AddNetStream().Configure(configure);

            // Kestrel asks the last registered factory first; NetStream declines what it cannot bind.
            services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<NetStreamTransportFactory>());
            KestrelHooks.Register(services);
            // Endpoints' own options in Kestrel's configuration (Kestrel:Endpoints:<name>:NetStream), wherever Kestrel reads it from.
            services.AddOptions<KestrelServerOptions>().PostConfigure<KestrelEndpointOptions>(
                (kestrel, endpoints) => endpoints.UseKestrelConfiguration(kestrel.ConfigurationLoader?.Configuration));
            services.AddTransient<IStartupFilter, NetStream.Transport.Internal.Handoff.HandoffDrainStartupFilter>();
        });
    }
}
