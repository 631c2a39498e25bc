using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NetStream.Transport;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers NetStream in a service collection.</summary>
public static class NetStreamServiceCollectionExtensions
{
    /// <summary>
    /// Registers the NetStream transport: its factory, and its options bound from the <c>NetStream</c> configuration
    /// section and validated at start-up. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder for NetStream's options and hooks.</returns>
    public static NetStreamBuilder AddNetStream(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (!services.Any(d => d.ServiceType == typeof(NetStreamTransportFactory)))
        {
            // Bound from configuration when the container has one: a bare ServiceCollection (Bedrock-style) has none.
            services.AddOptions<NetStreamTransportOptions>()
                .Configure<IServiceProvider>((options, sp) =>
                {
                    if (sp.GetService<IConfiguration>() is { } configuration)
                    {
                        SectionBinder.Bind(
                            configuration.GetSection(NetStreamTransportOptions.SectionName),
                            options,
                            sp.GetServices<NetStreamSectionPart>().Select(part => part.OptionsType));
                    }
                })
                .ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<NetStreamTransportOptions>, NetStreamTransportOptionsValidator>());
            services.AddSingleton(sp => new NetStreamTransportFactory(
                sp.GetRequiredService<IOptions<NetStreamTransportOptions>>(),
                sp,
                sp.GetService<ILoggerFactory>()));
            services.AddMetrics();
            services.TryAddSingleton<ListenerRegistry>();
            services.TryAddSingleton<KestrelEndpointOptions>();
            services.TryAddSingleton<NetStream.Transport.Internal.Handoff.HandoffDrain>();
            services.AddHostedService<NetStream.Transport.Internal.Handoff.HandoffService>();
            services.TryAddSingleton(sp => new NetStreamMetrics(sp.GetRequiredService<IMeterFactory>()));
            services.TryAddSingleton(sp => new AcceptedHookChain(
                sp.GetServices<AcceptedHookRegistration>(),
                sp.GetRequiredService<IOptions<NetStreamTransportOptions>>().Value.Hooks,
                sp.GetRequiredService<IOptions<NetStreamTransportOptions>>().Value.ProxyProtocol,
                sp,
                sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
                sp.GetRequiredService<NetStreamMetrics>()));
        }

        return new NetStreamBuilder(services);
    }
}
