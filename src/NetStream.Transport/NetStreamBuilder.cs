using Microsoft.Extensions.DependencyInjection;

namespace NetStream.Transport;

/// <summary>Configures NetStream in a service collection: its options and its hooks.</summary>
public sealed class NetStreamBuilder
{
    internal NetStreamBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection NetStream is registered in.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Configures the transport options in code, after they are bound from configuration.</summary>
    /// <param name="configure">Changes the options.</param>
    public NetStreamBuilder Configure(Action<NetStreamTransportOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }
}
