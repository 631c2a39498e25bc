using System.Globalization;
using Microsoft.Extensions.Options;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Transport.Internal;

/// <summary>Validates the transport options once, at start-up; each failure names the configuration key and the value.</summary>
internal sealed class NetStreamTransportOptionsValidator : IValidateOptions<NetStreamTransportOptions>
{
    public ValidateOptionsResult Validate(string? name, NetStreamTransportOptions options)
    {
        var errors = Validate(options, NetStreamTransportOptions.SectionName);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>The failures of <paramref name="options"/>, with keys under <paramref name="prefix"/>.</summary>
    public static List<string> Validate(NetStreamTransportOptions options, string prefix)
    {
        var errors = new List<string>();
        void Check(bool ok, string key, object? value, string rule)
        {
            if (!ok)
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{prefix}:{key} = '{value}': {rule}."));
            }
        }

        Check(options.Backlog is null or > 0, "Backlog", options.Backlog, "must be a positive number (leave it out for the kernel's SOMAXCONN)");
        Check(options.ReceiveBufferSize is null or > 0, "ReceiveBufferSize", options.ReceiveBufferSize, "must be a positive number of bytes");
        Check(options.SendBufferSize is null or > 0, "SendBufferSize", options.SendBufferSize, "must be a positive number of bytes");
        Check(options.Linger is null || (options.Linger >= TimeSpan.Zero && options.Linger.Value.TotalSeconds <= int.MaxValue), "Linger", options.Linger, "must be zero or more");
        Check((options.CloseTimeout > TimeSpan.Zero && options.CloseTimeout <= TimeSpan.FromMilliseconds(int.MaxValue - 1)) || options.CloseTimeout == Timeout.InfiniteTimeSpan, "CloseTimeout", options.CloseTimeout, "must be positive and under 24 days, or -00:00:00.001 for no limit");
        Check(options.MaxReadBufferSize is null or >= 0, "MaxReadBufferSize", options.MaxReadBufferSize, "must be zero (no limit) or more");
        Check(options.MaxWriteBufferSize is null or >= 0, "MaxWriteBufferSize", options.MaxWriteBufferSize, "must be zero (no limit) or more");
        Check(options.DescriptorReserve is null or >= 0, "DescriptorReserve", options.DescriptorReserve, "must be zero (no reserve) or a number of file descriptors");
        var limit = DescriptorHeadroom.ReadLimit();
        Check(options.DescriptorReserve is null or 0 || options.DescriptorReserve < limit, "DescriptorReserve", options.DescriptorReserve, $"must be below the process's open-file limit ({limit}, ulimit -n): with that reserve no connection could ever be accepted");
        Check(options.IOQueueCount >= 0, "IOQueueCount", options.IOQueueCount, "must be zero (inline) or more");
        Check(options.EngineThreads is >= 1 and <= 256, "EngineThreads", options.EngineThreads, "must be 1 to 256");
        Check(Enum.IsDefined(options.Engine), "Engine", options.Engine, $"must be one of {string.Join(", ", Enum.GetNames<NetStreamEngine>())}");
        Check(options.DeferAccept is null || (options.DeferAccept >= TimeSpan.FromSeconds(1) && options.DeferAccept.Value.TotalSeconds <= int.MaxValue), "DeferAccept", options.DeferAccept, "must be at least 1 second (the kernel counts whole seconds; leave it out for no deferral)");
        Check(options.FastOpen is null or > 0, "FastOpen", options.FastOpen, "must be a positive queue length (leave it out for no Fast Open)");
        Check(options.Handoff.Path is null || (options.Handoff.Path.Length is > 0 and <= 90 && Path.IsPathFullyQualified(options.Handoff.Path)), "Handoff:Path", options.Handoff.Path, "must be an absolute path of at most 90 characters (a Unix socket's address holds 107, and the handoff binds a staging name beside it)");
        Check(options.Handoff.Timeout > TimeSpan.Zero && options.Handoff.Timeout <= TimeSpan.FromMilliseconds(int.MaxValue - 1), "Handoff:Timeout", options.Handoff.Timeout, "must be positive and under 24 days");
        Check(options.AcceptShards is >= 1 and <= 256, "AcceptShards", options.AcceptShards, "must be 1 to 256 listening sockets");
        Check(!options.IncomingCpu || options.Engine == NetStreamEngine.Epoll, "IncomingCpu", options.IncomingCpu, $"needs Engine = Epoll, whose loops the connections are steered to (Engine is {options.Engine})");
        Check(IsValidMode(options.UnixSocketFileMode), "UnixSocketFileMode", options.UnixSocketFileMode, "must be an octal file mode such as 0660");

        var keepAlive = options.KeepAlive;
        // Linux's own bounds (net/ipv4/tcp.c): past them every accepted socket would fail to take the option.
        Check(keepAlive.Idle is null || IsKeepAliveTime(keepAlive.Idle.Value), "KeepAlive:Idle", keepAlive.Idle, "must be from 1 second to 32767 seconds (09:06:07)");
        Check(keepAlive.Interval is null || IsKeepAliveTime(keepAlive.Interval.Value), "KeepAlive:Interval", keepAlive.Interval, "must be from 1 second to 32767 seconds (09:06:07)");
        Check(keepAlive.Count is null or >= 1 and <= 127, "KeepAlive:Count", keepAlive.Count, "must be from 1 to 127");

        var timeout = options.Hooks.Timeout;
        Check((timeout > TimeSpan.Zero && timeout <= TimeSpan.FromMilliseconds(int.MaxValue - 1)) || timeout == Timeout.InfiniteTimeSpan, "Hooks:Timeout", timeout, "must be positive and under 24 days, or -00:00:00.001 for no limit");
        Check(options.Hooks.MaxConnectionsPerIp is null or > 0, "Hooks:MaxConnectionsPerIp", options.Hooks.MaxConnectionsPerIp, "must be a positive number");
        Check(options.Hooks.MaxConnectionsPerEndpoint is null or > 0, "Hooks:MaxConnectionsPerEndpoint", options.Hooks.MaxConnectionsPerEndpoint, "must be a positive number");
        foreach (var (list, key) in new[] { (options.Hooks.Allow, "Hooks:Allow"), (options.Hooks.Deny, "Hooks:Deny") })
        {
            for (var i = 0; i < list.Count; i++)
            {
                Check(IpNetworks.TryParse(list[i], out _), $"{key}:{i}", list[i], "must be an IP address or a network in CIDR notation with no host bits set, such as 10.0.0.0/8 or fd00::/8");
            }
        }

        ValidateProxyProtocol(options.ProxyProtocol, Check);
        Check(
            options.ProxyProtocol.Mode == ProxyProtocolMode.Off || options.Hooks.Timeout == Timeout.InfiniteTimeSpan || options.ProxyProtocol.HeaderTimeout < options.Hooks.Timeout,
            "ProxyProtocol:HeaderTimeout",
            options.ProxyProtocol.HeaderTimeout,
            $"must be shorter than Hooks:Timeout ({options.Hooks.Timeout}), which bounds the whole accepted chain the header is read in: a late header would be refused as hook_timeout, never as proxy_timeout");
        return errors;
    }

    /// <summary>The PROXY protocol receiver's options (also of a Kestrel endpoint's own, keys under <c>NetStream</c>).</summary>
    public static void ValidateProxyProtocol(ProxyProtocolOptions proxy, Action<bool, string, object?, string> check)
    {
        check(Enum.IsDefined(proxy.Mode), "ProxyProtocol:Mode", proxy.Mode, "must be Off, Require or Optional");
        check(
            proxy.Mode == ProxyProtocolMode.Off || proxy.TrustedProxies.Count > 0 || proxy.AllowAnyPeer,
            "ProxyProtocol:TrustedProxies",
            string.Empty,
            $"is empty while ProxyProtocol:Mode is {proxy.Mode}: list the proxies whose headers are believed (CIDR networks, or unix), or set ProxyProtocol:AllowAnyPeer to true if nothing but the proxy can reach the endpoint");
        for (var i = 0; i < proxy.TrustedProxies.Count; i++)
        {
            check(ProxyProtocolReceiver.TryParseTrusted(proxy.TrustedProxies[i], out _), $"ProxyProtocol:TrustedProxies:{i}", proxy.TrustedProxies[i], "must be an IP address, a network in CIDR notation with no host bits set (such as 10.0.0.0/8), or unix");
        }

        check(proxy.HeaderTimeout >= TimeSpan.FromSeconds(1) && proxy.HeaderTimeout <= TimeSpan.FromMilliseconds(int.MaxValue - 1), "ProxyProtocol:HeaderTimeout", proxy.HeaderTimeout, "must be at least 1 second and under 24 days");
        check(proxy.MaxHeaderBytes is >= ProxyProtocolReceiver.MinHeaderBytesLimit and <= ProxyProtocolReceiver.MaxHeaderBytesLimit, "ProxyProtocol:MaxHeaderBytes", proxy.MaxHeaderBytes, $"must be from {ProxyProtocolReceiver.MinHeaderBytesLimit} (a v2 header with Unix addresses) to {ProxyProtocolReceiver.MaxHeaderBytesLimit} (v2's own limit)");
    }

    private static bool IsKeepAliveTime(TimeSpan time) => time >= TimeSpan.FromSeconds(1) && time < TimeSpan.FromSeconds(32768);

    private static bool IsValidMode(string? mode)
    {
        if (mode is null)
        {
            return true;
        }

        try
        {
            UnixSocketFile.ParseMode(mode);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
