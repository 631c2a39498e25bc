using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using NetStream.Transport;

namespace NetStream.Tests.Infrastructure;

/// <summary>Binds NetStream listeners the Bedrock way (no host), and connects clients to them.</summary>
internal static class Listeners
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static NetStreamTransportFactory Factory(Action<NetStreamTransportOptions>? configure = null)
    {
        var options = new NetStreamTransportOptions();
        configure?.Invoke(options);
        return new NetStreamTransportFactory(Options.Create(options));
    }

    public static async Task<NetStreamListener> BindAsync(EndPoint endPoint, Action<NetStreamTransportOptions>? configure = null)
    {
        var factory = Factory(configure);
        return await factory.BindAsync(endPoint, factory.Options);
    }

    public static Task<NetStreamListener> BindLoopbackAsync(Action<NetStreamTransportOptions>? configure = null) =>
        BindAsync(new IPEndPoint(IPAddress.Loopback, 0), configure);

    public static async Task<Socket> ConnectAsync(EndPoint endPoint)
    {
        var family = endPoint is UnixDomainSocketEndPoint ? AddressFamily.Unix : endPoint.AddressFamily;
        var protocol = family == AddressFamily.Unix ? ProtocolType.Unspecified : ProtocolType.Tcp;
        var client = new Socket(family, SocketType.Stream, protocol);
        using var timeout = new CancellationTokenSource(Timeout);
        await client.ConnectAsync(endPoint, timeout.Token);
        return client;
    }

    /// <summary>Reads until the peer closes or <paramref name="count"/> bytes arrived.</summary>
    public static async Task<byte[]> ReceiveAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var read = 0;
        using var timeout = new CancellationTokenSource(Timeout);
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return buffer[..read];
    }

    public static CancellationToken TimeoutToken() => new CancellationTokenSource(Timeout).Token;

    public static string TempDirectory()
    {
        // Short: a Unix socket path must fit in 108 bytes.
        var path = Path.Combine("/tmp", "ns-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(path);
        return path;
    }

    public static int OpenDescriptorCount() => Directory.GetFiles("/proc/self/fd").Length;
}
