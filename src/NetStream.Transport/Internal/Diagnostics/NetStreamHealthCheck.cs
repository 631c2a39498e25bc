using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace NetStream.Transport.Internal;

/// <summary>
/// Whether every bound endpoint accepts: unhealthy when one is not (its accepts have failed for 10 s, or its socket is
/// gone), degraded while one backs off after failed accepts or holds back for file descriptors; with each endpoint's
/// state and the process's descriptor headroom in the data.
/// </summary>
internal sealed class NetStreamHealthCheck(ListenerRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>();
        var status = HealthStatus.Healthy;
        var troubled = new List<string>();
        foreach (var listener in registry.Listeners)
        {
            var (state, endpointStatus) = listener switch
            {
                { IsListening: false } => ("not accepting", HealthStatus.Unhealthy),
                { IsHoldingBack: true } => ("holding back: too few file descriptors free", HealthStatus.Degraded),
                { IsBackingOff: true } => ("backing off after failed accepts", HealthStatus.Degraded),
                _ => ("accepting", HealthStatus.Healthy),
            };
            var name = listener.EndPoint.ToString() ?? "?";
            data[$"endpoint {name}"] = state;
            if (endpointStatus < status)
            {
                status = endpointStatus;
            }

            if (endpointStatus != HealthStatus.Healthy)
            {
                troubled.Add($"{name}: {state}");
            }
        }

        DescriptorHeadroom.Process.HasRoom(reserve: 0, out var open, out var limit);
        data["descriptors.open"] = open;
        data["descriptors.limit"] = limit;
        var description = registry.Listeners.Count == 0 ? "No NetStream endpoint is bound."
            : troubled.Count == 0 ? "Every NetStream endpoint accepts."
            : string.Join("; ", troubled);
        return Task.FromResult(new HealthCheckResult(status == HealthStatus.Unhealthy ? context.Registration.FailureStatus : status, description, data: data));
    }
}
