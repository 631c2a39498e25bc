using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace NetStream.Tests.Infrastructure;

/// <summary>Services for NetStream without a host, as Bedrock-style code sets them up: configuration and logging.</summary>
internal static class BareServices
{
    /// <summary>Configuration from <paramref name="settings"/> (keys such as <c>NetStream:IOQueueCount</c>), and logging.</summary>
    public static ServiceCollection With(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration).AddLogging();
        return services;
    }
}
