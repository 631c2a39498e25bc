using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.ProxyProtocol;
using Xunit.Abstractions;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// A real HAProxy in front of Kestrel on NetStream and of the hosted echo server, speaking PROXY v1 and v2 (with CRC32C
/// and UNIQUE_ID TLVs) and health-checking both: every client is seen as itself, every byte arrives exact.
/// </summary>
public sealed class HaproxyTests(ITestOutputHelper output)
{
    /// <summary>Connections per frontend (four of them: v1 and v2, each over IPv4 and IPv6).</summary>
    private const int PerFrontend = 250;

    private static readonly Dictionary<string, string> Servers = new()
    {
        ["v1"] = "send-proxy check inter 300 check-send-proxy",
        ["v2"] = "send-proxy-v2 proxy-v2-options crc32c,unique-id check inter 300 check-send-proxy",
    };

    /// <summary>As <see cref="Servers"/>, and a frontend that ends the client's TLS and tells the backend of it (SSL TLV).</summary>
    private static readonly Dictionary<string, string> WithTls = new(Servers)
    {
        ["v2tls"] = "send-proxy-v2 proxy-v2-options ssl,crc32c,unique-id",
    };

    [Fact]
    public async Task Kestrel_behind_haproxy_sees_every_client_s_own_address_and_port()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0),
            web => web.Run(context =>
            {
                var proxy = context.Features.Get<IProxyProtocolFeature>();
                var uniqueId = proxy?.UniqueId is { } id ? Encoding.ASCII.GetString(id.Span) : "-";
                return PlainText.WriteAsync(context, $"{context.Connection.RemoteIpAddress}|{context.Connection.RemotePort}|v{proxy?.Version}|{uniqueId}|{proxy?.Ssl?.Version}");
            }),
            timeout.Token,
            o =>
            {
                o.ProxyProtocol.Mode = ProxyProtocolMode.Require;
                o.ProxyProtocol.TrustedProxies.Add("127.0.0.1");
            });
        using var haproxy = await Haproxy.StartAsync(app.EndPoint, WithTls);
        try
        {
            foreach (var (name, frontend) in haproxy.Frontends)
            {
                var tls = name.Contains("tls", StringComparison.Ordinal);
                await ForEachClientAsync(frontend, async client =>
                {
                    var self = (IPEndPoint)client.LocalEndPoint!;
                    var body = await GetAsync(client, tls);

                    // HAProxy's unique-id-format is "%ci:%cp": the UNIQUE_ID TLV names the client too; through the TLS
                    // frontend the SSL TLV tells the TLS version the client spoke.
                    var uniqueId = name.StartsWith("v2", StringComparison.Ordinal) ? $"{self.Address}:{self.Port}" : "-";
                    var parts = body.Split('|');
                    Assert.Equal($"{self.Address}|{self.Port}|v{name[1]}|{uniqueId}", string.Join('|', parts[..4]));
                    Assert.True(tls == parts[4].StartsWith("TLSv1.", StringComparison.Ordinal), body);
                });
            }
        }
        finally
        {
            output.WriteLine(haproxy.Output);
        }
    }

    [Fact]
    public async Task The_hosted_echo_server_behind_haproxy_sees_every_client_and_echoes_every_byte_exact()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:Endpoints:E0:ProxyProtocol:TrustedProxies:0"] = "127.0.0.1";
        await using var host = await EchoHost.StartAsync(settings, WhomEcho.Use);
        using var refusals = new RefusalRecorder(host.Host.Services);
        using var haproxy = await Haproxy.StartAsync(host.EndPoint, Servers);
        try
        {
            foreach (var frontend in haproxy.Frontends.Values)
            {
                await ForEachClientAsync(frontend, async client =>
                {
                    var self = (IPEndPoint)client.LocalEndPoint!;
                    var payload = EchoClient.RandomBytes(4096);
                    await client.SendAsync(payload);
                    client.Shutdown(SocketShutdown.Send);
                    var received = await Listeners.ReceiveAsync(client, 1 << 20);
                    var line = Encoding.ASCII.GetBytes($"{self}\n");
                    Assert.Equal([.. line, .. payload], received);
                });
            }

            // HAProxy's health checks (a LOCAL header, or UNKNOWN, and a close) were served, not refused.
            if (!refusals.IsEmpty)
            {
                Assert.Fail($"A connection was refused: {await refusals.NextAsync()}");
            }
        }
        finally
        {
            output.WriteLine(haproxy.Output);
        }
    }

    [Fact]
    public async Task A_unix_socket_endpoint_behind_haproxy_trusts_unix_peers_and_sees_the_tcp_client()
    {
        var directory = Listeners.TempDirectory();
        var path = Path.Combine(directory, "echo.sock");
        var settings = EchoHost.Endpoints("unix:" + path);
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "unix";
        try
        {
            await using var host = await EchoHost.StartAsync(settings, WhomEcho.Use);
            using var haproxy = await Haproxy.StartAsync(host.EndPoint, new Dictionary<string, string> { ["v2"] = "send-proxy-v2" });

            using var client = await Listeners.ConnectAsync(haproxy.Frontends["v2"]);
            await client.SendAsync("hello"u8.ToArray());
            client.Shutdown(SocketShutdown.Send);

            Assert.Equal($"{client.LocalEndPoint}\nhello", Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 4096)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>One request on <paramref name="client"/>, over TLS if asked; the response's body.</summary>
    private static async Task<string> GetAsync(Socket client, bool tls)
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        Stream stream = new NetworkStream(client);
        if (tls)
        {
            // HAProxy's certificate is made for the run: what is tested here is what HAProxy tells the backend.
#pragma warning disable CA5359
            var secure = new System.Net.Security.SslStream(stream, leaveInnerStreamOpen: false, (_, _, _, _) => true);
#pragma warning restore CA5359
            await secure.AuthenticateAsClientAsync("localhost");
            stream = secure;
        }

        await using (stream)
        {
            await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray(), timeout.Token);
            var response = await new StreamReader(stream).ReadToEndAsync(timeout.Token);
            return response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        }
    }

    /// <summary>Runs <paramref name="client"/> on <see cref="PerFrontend"/> connections to <paramref name="frontend"/>, 16 at a time.</summary>
    private static async Task ForEachClientAsync(IPEndPoint frontend, Func<Socket, Task> client)
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        await Parallel.ForEachAsync(Enumerable.Range(0, PerFrontend), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = timeout.Token }, async (_, _) =>
        {
            using var socket = await Listeners.ConnectAsync(frontend);
            await client(socket);
        });
    }
}
