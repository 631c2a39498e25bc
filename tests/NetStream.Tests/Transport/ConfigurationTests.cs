using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NetStream.Transport;

namespace NetStream.Tests.Transport;

public sealed class ConfigurationTests
{
    [Theory]
    [InlineData("NetStream:Backlog", "abc")]
    [InlineData("NetStream:Backlog", "-1")]
    [InlineData("NetStream:Backlog", "0")]
    [InlineData("NetStream:KeepAlive:Count", "0")]
    [InlineData("NetStream:KeepAlive:Count", "128")]
    [InlineData("NetStream:Linger", "nope")]
    [InlineData("NetStream:UnixSocketFileMode", "999")]
    [InlineData("NetStream:Bogus", "1")]
    [InlineData("NetStream:Engine", "Turbo")]
    [InlineData("NetStream:ReceiveBufferSize", "0")]
    [InlineData("NetStream:SendBufferSize", "-5")]
    [InlineData("NetStream:MaxReadBufferSize", "-1")]
    [InlineData("NetStream:MaxWriteBufferSize", "-1")]
    [InlineData("NetStream:IOQueueCount", "-2")]
    [InlineData("NetStream:DescriptorReserve", "-1")]
    [InlineData("NetStream:DescriptorReserve", "many")]
    [InlineData("NetStream:KeepAlive:Idle", "00:00:00")]
    [InlineData("NetStream:KeepAlive:Interval", "00:00:00")]
    [InlineData("NetStream:KeepAlive:Idle", "09:06:08")]
    [InlineData("NetStream:KeepAlive:Interval", "1.00:00:00")]
    [InlineData("NetStream:Linger", "-00:00:01")]
    [InlineData("NetStream:CloseTimeout", "00:00:00")]
    [InlineData("NetStream:Hooks:Timeout", "00:00:00")]
    [InlineData("NetStream:Hooks:MaxConnectionsPerIp", "0")]
    [InlineData("NetStream:Hooks:MaxConnectionsPerEndpoint", "-3")]
    [InlineData("NetStream:Hooks:Allow:0", "10.0.0.1/8")]
    [InlineData("NetStream:EngineThreads", "0")]
    [InlineData("NetStream:EngineThreads", "257")]
    [InlineData("NetStream:DescriptorReserve", "2147483647")]
    [InlineData("NetStream:DeferAccept", "00:00:00")]
    [InlineData("NetStream:FastOpen", "0")]
    [InlineData("NetStream:TcpInfoOnClose", "sometimes")]
    [InlineData("NetStream:AcceptShards", "0")]
    [InlineData("NetStream:AcceptShards", "257")]
    [InlineData("NetStream:Handoff:Path", "relative/handoff.sock")]
    [InlineData("NetStream:Handoff:Timeout", "00:00:00")]
    public async Task A_bad_value_fails_start_naming_the_key_and_the_value(string key, string value)
    {
        await using var app = Build(new Dictionary<string, string?> { [key] = value });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(timeout.Token));

        Assert.Equal(typeof(NetStreamTransportOptions), error.OptionsType);
        Assert.Contains(key, error.Message);
        Assert.Contains($"'{value}'", error.Message);
    }

    [Fact]
    public async Task A_proxy_header_timeout_the_hook_time_limit_would_cut_short_fails_start_naming_both()
    {
        await using var app = Build(new Dictionary<string, string?>
        {
            ["NetStream:ProxyProtocol:Mode"] = "Require",
            ["NetStream:ProxyProtocol:TrustedProxies:0"] = "127.0.0.1",
            ["NetStream:ProxyProtocol:HeaderTimeout"] = "00:00:10",
            ["NetStream:Hooks:Timeout"] = "00:00:05",
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(timeout.Token));

        Assert.Contains("NetStream:ProxyProtocol:HeaderTimeout = '00:00:10'", error.Message);
        Assert.Contains("Hooks:Timeout (00:00:05)", error.Message);
    }

    [Fact]
    public async Task A_valid_section_binds_into_the_options_and_starts()
    {
        await using var app = Build(new Dictionary<string, string?>
        {
            ["NetStream:Backlog"] = "128",
            ["NetStream:NoDelay"] = "false",
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        await app.StartAsync(timeout.Token);

        var options = app.Services.GetRequiredService<IOptions<NetStreamTransportOptions>>().Value;
        Assert.Equal(128, options.Backlog);
        Assert.False(options.NoDelay);
        Assert.True(options.ReuseAddress); // untouched keys keep their defaults
        Assert.Same(options, app.Services.GetRequiredService<NetStreamTransportFactory>().Options);
        await app.StopAsync(timeout.Token);
    }

    [Theory]
    [InlineData("NetStream:Backlog", "abc", "NetStream:Backlog = 'abc': ")]
    [InlineData("NetStream:KeepAlive:Idle", "soon", "NetStream:KeepAlive:Idle = 'soon': ")]
    [InlineData("NetStream:Engine", "Turbo", "NetStream:Engine = 'Turbo': ")]
    [InlineData("NetStream:Bogus", "1", "NetStream:Bogus = '1': unknown key (known: AcceptShards, Backlog, ")]
    [InlineData("NetStream:Hooks:Allow", "10.0.0.0/8", "NetStream:Hooks:Allow = '10.0.0.0/8': expected a list (Allow:0, Allow:1, ... or a JSON array).")]
    [InlineData("NetStream:KeepAlive", "true", "NetStream:KeepAlive = 'true': expected a section with keys Count, Enabled, Idle, Interval.")]
    [InlineData("NetStream:Backlog:Value", "5", "NetStream:Backlog: expected a single value, found a section.")]
    public async Task What_the_binder_would_ignore_or_not_name_is_reported_with_the_key_and_the_value(string key, string value, string expected)
    {
        await using var app = Build(new Dictionary<string, string?> { [key] = value });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync(timeout.Token));

        Assert.StartsWith(expected, Assert.Single(error.Failures));
    }

    [Fact]
    public async Task Code_configuration_is_applied_after_the_section()
    {
        await using var app = Build(new Dictionary<string, string?> { ["NetStream:Backlog"] = "128" }, o => o.Backlog = 64);

        var options = app.Services.GetRequiredService<IOptions<NetStreamTransportOptions>>().Value;

        Assert.Equal(64, options.Backlog);
    }

    private static WebApplication Build(Dictionary<string, string?> settings, Action<NetStreamTransportOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseNetStream(configure ?? (static _ => { }));
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        return builder.Build();
    }
}
