using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using NetStream.Hosting;
using NetStream.Hosting.Internal;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the hosted NetStream server.</summary>
public static class NetStreamServerServiceCollectionExtensions
{
    /// <summary>
    /// Adds a generic-host server that binds the endpoints under <c>NetStream:Endpoints</c> and runs every connection
    /// through the pipeline <paramref name="configure"/> builds, e.g. <c>server =&gt; server.UseConnectionHandler&lt;EchoHandler&gt;()</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Builds the connection pipeline with the Connections.Abstractions types.</param>
    /// <returns>A builder for NetStream's options and hooks.</returns>
    public static NetStreamBuilder AddNetStreamServer(this IServiceCollection services, Action<IConnectionBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = services.AddNetStream();
        if (!services.Any(d => d.ImplementationInstance is NetStreamSectionPart { OptionsType: var type } && type == typeof(NetStreamServerOptions)))
        {
            services.AddSingleton(new NetStreamSectionPart(typeof(NetStreamServerOptions)));
        }

        services.AddOptions<NetStreamServerOptions>()
            .Configure<IConfiguration>((options, configuration) =>
                SectionBinder.Bind(configuration.GetSection(NetStreamTransportOptions.SectionName), options))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<NetStreamServerOptions>, NetStreamServerOptionsValidator>());
        services.AddSingleton(sp =>
        {
            var pipeline = new ConnectionBuilder(sp);
            configure(pipeline);
            return pipeline.Build();
        });
        services.AddSingleton<NetStreamServer>();
        services.AddHostedService(sp => sp.GetRequiredService<NetStreamServer>());
        services.AddHostedService<SystemdNotify>();
        return builder;
    }
}
