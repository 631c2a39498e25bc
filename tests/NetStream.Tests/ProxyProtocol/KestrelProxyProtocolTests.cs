using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

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

    private static async Task<string> GetAsync(IPEndPoint endPoint, string header)
    {
        using var client = await Listeners.ConnectAsync(endPoint);
        await client.SendAsync(Encoding.ASCII.GetBytes(header + "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        var response = Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 4096));
        return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
    }
}
