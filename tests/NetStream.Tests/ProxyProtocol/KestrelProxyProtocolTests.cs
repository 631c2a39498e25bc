using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Tests.ProxyProtocol;

/// <summary><c>listenOptions.UseProxyProtocol()</c>: the receiver on chosen Kestrel endpoints only.</summary>
public sealed class KestrelProxyProtocolTests
{
    [Fact]
    public async Task Only_the_endpoint_that_uses_the_proxy_protocol_reads_a_header()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseProxyProtocol(o => o.TrustedProxies.Add("127.0.0.1")));
                kestrel.Listen(IPAddress.Loopback, 0);
            },
            web => web.Run(context => PlainText.WriteAsync(context, $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}")),
            timeout.Token);
        var behindProxy = IPEndPoint.Parse(new Uri(app.Addresses[0]).Authority);

        Assert.Equal("192.0.2.1:4321", await GetAsync(behindProxy, "PROXY TCP4 192.0.2.1 192.0.2.2 4321 80\r\n"));

        // The other endpoint serves a plain request, and sees the client itself.
        using var client = new HttpClient();
        Assert.StartsWith("127.0.0.1:", await client.GetStringAsync(new Uri(app.Addresses[1]), timeout.Token));
    }

    [Fact]
    public async Task An_endpoint_s_receiver_options_are_checked_when_kestrel_starts_naming_the_endpoint()
    {
        using var timeout = KestrelApp.Timeout();
        var error = await Record.ExceptionAsync(() => KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseProxyProtocol()),
            web => web.Run(context => Task.CompletedTask),
            timeout.Token));

        Assert.NotNull(error);
        Assert.Contains("UseProxyProtocol() on", error.ToString());
        Assert.Contains("ProxyProtocol:TrustedProxies", error.ToString());
    }

    [Fact]
    public async Task The_header_is_read_before_tls_and_the_https_request_sees_the_client()
    {
        using var timeout = KestrelApp.Timeout();
        using var certificate = NetStream.Tests.Kestrel.TestCertificate.Create();
        await using var app = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.UseProxyProtocol(o => o.TrustedProxies.Add("127.0.0.1"));
                listen.UseHttps(certificate);
            }),
            web => web.Run(context => PlainText.WriteAsync(context, $"{context.Request.IsHttps}|{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}")),
            timeout.Token);
        var endPoint = IPEndPoint.Parse(new Uri(app.Addresses[0]).Authority);

        using var client = await Listeners.ConnectAsync(endPoint);
        await client.SendAsync("PROXY TCP4 192.0.2.3 192.0.2.4 5555 443\r\n"u8.ToArray());
        await using var tls = new System.Net.Security.SslStream(
            new NetworkStream(client),
            leaveInnerStreamOpen: false,
            (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString());
        await tls.AuthenticateAsClientAsync("localhost");
        await tls.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray(), timeout.Token);
        var response = await new StreamReader(tls).ReadToEndAsync(timeout.Token);

        Assert.EndsWith("\r\n\r\nTrue|192.0.2.3:5555", response);
    }

    [Fact]
    public async Task In_optional_mode_a_trusted_peer_may_send_a_header_or_not()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseProxyProtocol(o =>
            {
                o.Mode = ProxyProtocolMode.Optional;
                o.TrustedProxies.Add("127.0.0.1");
            })),
            web => web.Run(context => PlainText.WriteAsync(context, $"{context.Connection.RemoteIpAddress}")),
            timeout.Token);
        var endPoint = IPEndPoint.Parse(new Uri(app.Addresses[0]).Authority);

        Assert.Equal("192.0.2.5", await GetAsync(endPoint, "PROXY TCP4 192.0.2.5 192.0.2.6 1000 80\r\n"));
        Assert.Equal("127.0.0.1", await GetAsync(endPoint, string.Empty));
    }

    private static async Task<string> GetAsync(IPEndPoint endPoint, string header)
    {
        using var client = await Listeners.ConnectAsync(endPoint);
        await client.SendAsync(Encoding.ASCII.GetBytes(header + "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        var response = Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 4096));
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }
}
