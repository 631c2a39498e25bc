using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class UnixSocketTests
{
    [Fact]
    public async Task Http_over_unix_socket_serves_requests_and_removes_the_socket_file_on_stop()
    {
        using var timeout = KestrelApp.Timeout();
        var directory = Directory.CreateTempSubdirectory("netstream-");
        try
        {
            var path = Path.Combine(directory.FullName, "kestrel.sock");
            await using var app = await KestrelApp.StartAsync(
                k => k.ListenUnixSocket(path),
                a => a.Run(context => context.Response.WriteAsync($"unix {context.Request.Path}")),
                timeout.Token);
            Assert.True(File.Exists(path), "the socket file exists while the app runs");

            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            using (var client = new HttpClient(handler) { BaseAddress = new Uri("http://localhost"), Timeout = KestrelApp.TestTimeout })
            {
                Assert.Equal("unix /one", await client.GetStringAsync("/one", timeout.Token));
                Assert.Equal("unix /two", await client.GetStringAsync("/two", timeout.Token));
            }

            await app.StopAsync();

            Assert.False(File.Exists(path), "the socket file is removed once the app stops");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
