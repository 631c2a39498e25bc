using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class LargeBodyTests
{
    private const int OneMiB = 1024 * 1024;

    public static TheoryData<string> Protocols => ["HTTP/1.1", "HTTP/2"];

    /// <summary>
    /// Reads the whole request body, then writes it back. Reading it all first matters: HttpClient sends a non-duplex
    /// request body to the end before it reads the response, so a server that echoes as it reads would deadlock on
    /// HTTP/2 flow control once the client's stream window (64 KiB) is full.
    /// </summary>
    private static void Echo(WebApplication app) =>
        app.Run(async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            context.Response.ContentType = "application/octet-stream";
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), context.RequestAborted);
        });

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task Request_and_response_bodies_of_1_MiB_round_trip_byte_exact(string protocol)
    {
        var http2 = protocol == "HTTP/2";
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            Echo, timeout.Token, l => l.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        using var client = app.CreateClient(version: http2 ? HttpVersion.Version20 : HttpVersion.Version11);

        var sent = new byte[OneMiB];
        Random.Shared.NextBytes(sent);
        using var content = new ByteArrayContent(sent);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await client.PostAsync("/", content, timeout.Token);

        response.EnsureSuccessStatusCode();
        var received = await response.Content.ReadAsByteArrayAsync(timeout.Token);
        Assert.Equal(sent.Length, received.Length);
        Assert.True(sent.AsSpan().SequenceEqual(received), "the echoed body differs from the one sent");
    }

    [Fact]
    public async Task Response_body_of_1_MiB_written_in_one_call_arrives_byte_exact()
    {
        var body = new byte[OneMiB];
        Random.Shared.NextBytes(body);
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            a => a.Run(async context =>
            {
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body, context.RequestAborted);
            }),
            timeout.Token);
        using var client = app.CreateClient();

        var received = await client.GetByteArrayAsync("/", timeout.Token);

        Assert.True(body.AsSpan().SequenceEqual(received), "the response body differs from the one written");
    }

    [Fact]
    public async Task Request_body_of_1_MiB_arrives_byte_exact()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            a => a.Run(async context =>
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[8192];
                long length = 0;
                int read;
                while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
                {
                    sha.AppendData(buffer, 0, read);
                    length += read;
                }

                await context.Response.WriteAsync($"{length} {Convert.ToHexString(sha.GetHashAndReset())}");
            }),
            timeout.Token);
        using var client = app.CreateClient();

        var sent = new byte[OneMiB];
        Random.Shared.NextBytes(sent);
        using var content = new ByteArrayContent(sent);
        using var response = await client.PostAsync("/", content, timeout.Token);

        response.EnsureSuccessStatusCode();
        Assert.Equal(
            $"{sent.Length} {Convert.ToHexString(SHA256.HashData(sent))}",
            await response.Content.ReadAsStringAsync(timeout.Token));
    }
}
