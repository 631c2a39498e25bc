using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Kestrel;

/// <summary>A Kestrel endpoint's own transport options from configuration: a <c>NetStream</c> section inside the endpoint.</summary>
public sealed class EndpointConfigurationTests
{
    [Fact]
    public async Task Each_configured_endpoint_binds_with_the_options_of_its_own_section()
    {
        var unix = Path.Combine(Listeners.TempDirectory(), "api.sock");
        using var timeout = KestrelApp.Timeout();
        await using var app = await StartAsync(new()
        {
            ["NetStream:Engine"] = "Sockets",
            ["Kestrel:Endpoints:Tcp:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Tcp:NetStream:Engine"] = "Epoll",
            ["Kestrel:Endpoints:Tcp:NetStream:AcceptShards"] = "2",
            ["Kestrel:Endpoints:Unix:Url"] = $"http://unix:{unix}",
            ["Kestrel:Endpoints:Plain:Url"] = "http://[::1]:0",
        }, timeout.Token);
        var listeners = app.App.Services.GetRequiredService<ListenerRegistry>().Listeners.ToList();

        Assert.Equal(
            [NetStreamEngine.Epoll, NetStreamEngine.Epoll],
            listeners.Where(l => l.EndPoint is IPEndPoint { Address: var a } && a.Equals(IPAddress.Loopback)).Select(l => l.Engine));
        Assert.Equal(NetStreamEngine.Sockets, Assert.Single(listeners, l => l.EndPoint is UnixDomainSocketEndPoint).Engine);
        Assert.Equal(NetStreamEngine.Sockets, Assert.Single(listeners, l => l.EndPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 }).Engine);
        foreach (var address in app.Addresses.Where(a => !a.Contains("unix:", StringComparison.Ordinal)))
        {
            using var http = new HttpClient();
            Assert.Equal("configured", await http.GetStringAsync(address, timeout.Token));
        }
    }

    [Theory]
    [InlineData("Engine", "Bogus", "Kestrel:Endpoints:Tcp:NetStream:Engine = 'Bogus'")]
    [InlineData("Backlogg", "10", "Kestrel:Endpoints:Tcp:NetStream:Backlogg")]
    [InlineData("AcceptShards", "0", "AcceptShards")]
    public async Task A_bad_endpoint_section_fails_the_start_naming_the_key(string key, string value, string named)
    {
        using var timeout = KestrelApp.Timeout();
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync(new()
        {
            ["Kestrel:Endpoints:Tcp:Url"] = "http://127.0.0.1:0",
            [$"Kestrel:Endpoints:Tcp:NetStream:{key}"] = value,
        }, timeout.Token));

        var options = Assert.IsType<OptionsValidationException>(Innermost<OptionsValidationException>(failure));
        Assert.Contains(options.Failures, f => f.Contains(named, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_configured_endpoints_on_one_address_with_options_fail_the_start_naming_both()
    {
        using var timeout = KestrelApp.Timeout();
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync(new()
        {
            ["Kestrel:Endpoints:First:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Second:Url"] = "http://127.0.0.1:0",
            ["Kestrel:Endpoints:Second:NetStream:Engine"] = "Sockets",
        }, timeout.Token));

        var ambiguous = Assert.IsType<InvalidOperationException>(Innermost<InvalidOperationException>(failure));
        Assert.Contains("First, Second all bind 127.0.0.1:0", ambiguous.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5000", "127.0.0.1", 5000, true)]
    [InlineData("http://127.0.0.1:5000", "127.0.0.2", 5000, false)]
    [InlineData("http://127.0.0.1:5000", "127.0.0.1", 5001, false)]
    [InlineData("http://[::1]:5000/base", "::1", 5000, true)]
    [InlineData("http://localhost:5000", "127.0.0.1", 5000, true)]
    [InlineData("http://localhost:5000", "::1", 5000, true)]
    [InlineData("http://localhost:5000", "0.0.0.0", 5000, false)]
    [InlineData("http://*:5000", "::", 5000, true)]
    [InlineData("http://+:5000", "0.0.0.0", 5000, true)]
    [InlineData("http://example.com:5000", "::", 5000, true)]
    [InlineData("http://*:5000", "127.0.0.1", 5000, false)]
    [InlineData("http://127.0.0.1", "127.0.0.1", 80, true)]
    [InlineData("https://127.0.0.1", "127.0.0.1", 443, true)]
    [InlineData("not a url", "127.0.0.1", 80, false)]
    public void A_url_binds_the_endpoints_kestrel_binds_for_it(string url, string address, int port, bool binds) =>
        Assert.Equal(binds, KestrelEndpointOptions.Binds(url, new IPEndPoint(IPAddress.Parse(address), port)));

    [Fact]
    public void A_unix_url_binds_its_socket_file()
    {
        Assert.True(KestrelEndpointOptions.Binds("http://unix:/run/app/api.sock", new UnixDomainSocketEndPoint("/run/app/api.sock")));
        Assert.False(KestrelEndpointOptions.Binds("http://unix:/run/app/api.sock", new UnixDomainSocketEndPoint("/run/app/other.sock")));
        Assert.False(KestrelEndpointOptions.Binds("http://unix:/run/app/api.sock", new IPEndPoint(IPAddress.Loopback, 80)));
    }

    private static Task<KestrelApp> StartAsync(Dictionary<string, string?> settings, CancellationToken cancellationToken) =>
        KestrelApp.StartAsync(
            static _ => { },
            web => web.MapGet("/", () => "configured"),
            cancellationToken,
            configureBuilder: builder => builder.Configuration.AddInMemoryCollection(settings));

    private static Exception? Innermost<T>(Exception? failure)
        where T : Exception
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is T)
            {
                return e;
            }

            if (e is AggregateException aggregate && aggregate.InnerExceptions.Select(Innermost<T>).FirstOrDefault(i => i is not null) is { } found)
            {
                return found;
            }
        }

        return failure;
    }
}
