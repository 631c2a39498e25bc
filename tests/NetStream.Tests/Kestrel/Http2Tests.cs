using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class Http2Tests
{
    /// <summary>Answers "protocol connection-id", so a test sees both the version and the connection it was served on.</summary>
    private static void EchoProtocol(WebApplication app) =>
        app.Run(context => context.Response.WriteAsync($"{context.Request.Protocol} {context.Connection.Id}"));

    [Fact]
    public async Task Http2_cleartext_with_prior_knowledge_serves_h2()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(EchoProtocol, timeout.Token, l => l.Protocols = HttpProtocols.Http2);
        using var client = app.CreateClient(version: HttpVersion.Version20, policy: HttpVersionPolicy.RequestVersionExact);

        using var response = await client.GetAsync("/", timeout.Token);

        response.EnsureSuccessStatusCode();
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.StartsWith("HTTP/2 ", await response.Content.ReadAsStringAsync(timeout.Token), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http2_cleartext_multiplexes_concurrent_streams_on_one_connection()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(EchoProtocol, timeout.Token, l => l.Protocols = HttpProtocols.Http2);
        using var client = app.CreateClient(version: HttpVersion.Version20, policy: HttpVersionPolicy.RequestVersionExact);

        // The first request opens the connection, so the concurrent ones all find it.
        var first = await client.GetStringAsync("/", timeout.Token);
        var rest = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.GetStringAsync("/", timeout.Token)));

        Assert.All(rest, body => Assert.Equal(first, body));
    }

    [Fact]
    public async Task Http2_over_tls_negotiates_h2_with_alpn()
    {
        using var timeout = KestrelApp.Timeout();
        using var certificate = TestCertificate.Create();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            a => a.Run(context => context.Response.WriteAsync(
                $"{context.Request.Protocol} {context.Request.IsHttps} {Encoding.ASCII.GetString(context.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol.ToArray() ?? [])}")),
            timeout.Token,
            l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(certificate);
            });
        Assert.StartsWith("https://", app.Addresses[0], StringComparison.Ordinal);

        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
            presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();

        // RequestVersionOrLower: a failed ALPN would fall back to HTTP/1.1 and fail the version check, not the connect.
        using var client = app.CreateClient(handler, HttpVersion.Version20, HttpVersionPolicy.RequestVersionOrLower);
        using var response = await client.GetAsync("/", timeout.Token);

        response.EnsureSuccessStatusCode();
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("HTTP/2 True h2", await response.Content.ReadAsStringAsync(timeout.Token));
    }

    [Fact]
    public async Task Https_serves_http1_when_the_client_offers_only_http1()
    {
        using var timeout = KestrelApp.Timeout();
        using var certificate = TestCertificate.Create();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            EchoProtocol,
            timeout.Token,
            l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.UseHttps(certificate);
            });

        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
            presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();
        using var client = app.CreateClient(handler, HttpVersion.Version11, HttpVersionPolicy.RequestVersionExact);

        using var response = await client.GetAsync("/", timeout.Token);

        response.EnsureSuccessStatusCode();
        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.StartsWith("HTTP/1.1 ", await response.Content.ReadAsStringAsync(timeout.Token), StringComparison.Ordinal);
    }
}
