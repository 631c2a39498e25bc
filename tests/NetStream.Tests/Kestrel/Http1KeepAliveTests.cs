using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class Http1KeepAliveTests
{
    private static void EchoConnectionId(WebApplication app) =>
        app.Run(context => context.Response.WriteAsync(context.Connection.Id));

    [Fact]
    public async Task Http1_keep_alive_serves_several_requests_on_one_connection()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(EchoConnectionId, timeout.Token);

        var connects = 0;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connects);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var client = app.CreateClient(handler);

        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await client.GetAsync("/", timeout.Token);
            response.EnsureSuccessStatusCode();
            Assert.Equal(HttpVersion.Version11, response.Version);
            ids.Add(await response.Content.ReadAsStringAsync(timeout.Token));
        }

        Assert.Equal(1, Volatile.Read(ref connects));
        Assert.All(ids, id => Assert.Equal(ids[0], id));
        Assert.False(string.IsNullOrEmpty(ids[0]));
    }

    [Fact]
    public async Task Http1_keep_alive_serves_pipelined_requests_on_one_raw_connection()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(EchoConnectionId, timeout.Token);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(app.EndPoint, timeout.Token);

        // Two requests in one write, then a third with Connection: close so the whole exchange ends in FIN.
        await SendAsync(socket, "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n", timeout.Token);
        await SendAsync(socket, "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout.Token);
        var text = await ReadToEndAsync(socket, timeout.Token);

        var responses = text.Split("HTTP/1.1 200 OK", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, responses.Length);
        var ids = responses.Select(r =>
        {
            var headerEnd = r.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            return DecodeBody(r[..headerEnd], r[(headerEnd + 4)..]);
        }).ToArray();
        Assert.All(ids, id => Assert.Equal(ids[0], id));
        Assert.False(string.IsNullOrEmpty(ids[0]));
    }

    [Fact]
    public async Task Http1_connection_close_completes_the_response_then_server_closes_the_connection()
    {
        const string body = "goodbye";
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(a => a.Run(c => c.Response.WriteAsync(body)), timeout.Token);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(app.EndPoint, timeout.Token);

        await SendAsync(socket, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", timeout.Token);

        // ReadToEndAsync returns only when a receive returns 0: the server sent FIN after the response.
        var text = await ReadToEndAsync(socket, timeout.Token);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nConnection: close\r\n", text, StringComparison.OrdinalIgnoreCase);
        var headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(headerEnd > 0, text);
        Assert.Equal(body, DecodeBody(text[..headerEnd], text[(headerEnd + 4)..]));

        // The connection stays closed: a further read still returns 0 rather than blocking or failing.
        var buffer = new byte[16];
        Assert.Equal(0, await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token));
    }

    private static async Task SendAsync(Socket socket, string text, CancellationToken cancellationToken)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var sent = 0;
        while (sent < bytes.Length)
        {
            sent += await socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None, cancellationToken);
        }
    }

    private static async Task<string> ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var received = new MemoryStream();
        var buffer = new byte[4096];
        int count;
        while ((count = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
        {
            received.Write(buffer, 0, count);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    /// <summary>The body of one HTTP/1.1 response, framed by Content-Length or chunked encoding.</summary>
    private static string DecodeBody(string headers, string rest)
    {
        if (!headers.Contains("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            return rest;
        }

        var body = new StringBuilder();
        var position = 0;
        while (true)
        {
            var lineEnd = rest.IndexOf("\r\n", position, StringComparison.Ordinal);
            var size = Convert.ToInt32(rest[position..lineEnd], 16);
            if (size == 0)
            {
                Assert.Equal("\r\n", rest[(lineEnd + 2)..]);
                return body.ToString();
            }

            body.Append(rest, lineEnd + 2, size);
            position = lineEnd + 2 + size + 2;
        }
    }
}
