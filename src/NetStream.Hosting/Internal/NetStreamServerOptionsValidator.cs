using System.Globalization;
using Microsoft.Extensions.Options;
using NetStream.Transport;

namespace NetStream.Hosting.Internal;

/// <summary>Validates the hosted server's options at start-up; each failure names the configuration key and the value.</summary>
internal sealed class NetStreamServerOptionsValidator : IValidateOptions<NetStreamServerOptions>
{
    /// <summary>The longest time a timer takes (<see cref="Task.Delay(TimeSpan)"/>): about 24.8 days.</summary>
    internal static readonly TimeSpan LongestDelay = TimeSpan.FromMilliseconds(int.MaxValue - 1);

    private const string TimeoutRule = "must be positive and under 24 days, or -00:00:00.001 for none";

    public ValidateOptionsResult Validate(string? name, NetStreamServerOptions options)
    {
        var errors = new List<string>();
        void Check(bool ok, string key, object? value, string rule)
        {
            if (!ok)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{NetStreamTransportOptions.SectionName}:{key} = '{value}': {rule}."));
            }
        }

        Check(options.ShutdownTimeout >= TimeSpan.Zero && options.ShutdownTimeout <= LongestDelay, "ShutdownTimeout", options.ShutdownTimeout, "must be zero or more, and under 24 days");
        Check(options.MaxConnections is null or > 0, "MaxConnections", options.MaxConnections, "must be a positive number");
        Check(IsTimeout(options.FirstByteTimeout), "FirstByteTimeout", options.FirstByteTimeout, TimeoutRule);
        Check(IsTimeout(options.IdleTimeout), "IdleTimeout", options.IdleTimeout, TimeoutRule);
        foreach (var (endpoint, endpointOptions) in options.Endpoints)
        {
            Check(endpointOptions.MaxConnections is null or > 0, $"Endpoints:{endpoint}:MaxConnections", endpointOptions.MaxConnections, "must be a positive number");
            Check(endpointOptions.FirstByteTimeout is not { } firstByte || IsTimeout(firstByte), $"Endpoints:{endpoint}:FirstByteTimeout", endpointOptions.FirstByteTimeout, TimeoutRule);
            Check(endpointOptions.IdleTimeout is not { } idle || IsTimeout(idle), $"Endpoints:{endpoint}:IdleTimeout", endpointOptions.IdleTimeout, TimeoutRule);
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static bool IsTimeout(TimeSpan timeout) =>
        timeout == Timeout.InfiniteTimeSpan || (timeout > TimeSpan.Zero && timeout <= LongestDelay);
}
