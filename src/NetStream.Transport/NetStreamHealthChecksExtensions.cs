using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using NetStream.Transport.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers NetStream's health check.</summary>
public static class NetStreamHealthChecksExtensions
{
    /// <summary>
    /// Adds the health check <paramref name="name"/>: <see cref="HealthStatus.Unhealthy"/> (or
    /// <paramref name="failureStatus"/>) when a bound NetStream endpoint is not accepting, <see cref="HealthStatus.Degraded"/>
    /// while one backs off after failed accepts or holds back for file descriptors; its data has each endpoint's state and
    /// the process's open and allowed descriptors. Map it with <c>MapHealthChecks("/healthz")</c>.
    /// </summary>
    /// <param name="services">The service collection (<c>AddNetStream</c> is called if it was not).</param>
    /// <param name="name">The check's name. Default <c>netstream</c>.</param>
    /// <param name="failureStatus">What a failing check reports; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by; default <c>netstream</c>.</param>
    /// <returns>The health checks builder, for more checks.</returns>
    public static IHealthChecksBuilder AddNetStreamHealthChecks(
        this IServiceCollection services, string name = "netstream", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddNetStream();
        services.TryAddSingleton<ListenerRegistry>();
        return services.AddHealthChecks().AddCheck<NetStreamHealthCheck>(name, failureStatus, tags ?? ["netstream"]);
    }
}
