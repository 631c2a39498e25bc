using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Transport;

/// <summary>
/// <c>Linger</c>: a graceful close waits, without a thread, until the peer has acknowledged all that was sent, and
/// resets the connection if that takes longer than the linger time; without it, <c>CloseTimeout</c> bounds the wait
/// for the output NetStream still holds.
/// </summary>
public sealed class LingerTests
{
    private const int Payload = 256 * 1024;

    [Fact]
    public async Task A_lingering_close_delivers_everything_to_a_peer_that_reads_late()
    {
        var (connection, client) = await ConnectSlowReaderAsync(TimeSpan.FromSeconds(30));
        using var _ = client;
        var payload = new byte[Payload];
        Random.Shared.NextBytes(payload);

        // The peer's window is full: most of it waits, unacknowledged, in the server's send buffer at close.
        await connection.Transport.Output.WriteAsync(payload);
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);

        Assert.Equal(payload, await ReadToEndAsync(client));
    }

    [Fact]
    public async Task A_lingering_close_resets_a_peer_that_has_not_read_by_the_linger_time()
    {
        var (connection, client) = await ConnectSlowReaderAsync(TimeSpan.FromSeconds(1));
        using var _ = client;

        await connection.Transport.Output.WriteAsync(new byte[Payload]);
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);

        // Reading nothing, the client keeps its window shut until the reset comes (poll's error event; reading would
        // let the rest in). Then it reads what the window held, and the reset.
        Assert.True(client.Poll(Listeners.Timeout, SelectMode.SelectError), "No reset came.");
        var error = await Assert.ThrowsAsync<SocketException>(() => ReadToEndAsync(client));
        Assert.Equal(SocketError.ConnectionReset, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_lingering_close_ends_soon_after_the_peer_resets()
    {
        var (connection, client) = await ConnectSlowReaderAsync(TimeSpan.FromSeconds(30));
        using var _ = client;
        var socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
        await connection.Transport.Output.WriteAsync(new byte[Payload]);
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);
        Assert.False(socket.SafeHandle.IsClosed, "Not lingering: the peer has not read.");

        client.LingerState = new LingerOption(true, 0);
        client.Close();

        // The kernel still counts what the peer never acknowledged: only the peer's reset can end the wait early, well
        // before the linger time of 30 s.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!socket.SafeHandle.IsClosed)
        {
            await Task.Delay(20, timeout.Token);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_close_whose_output_a_peer_never_takes_is_reset_at_the_linger_time_or_the_close_timeout(bool linger)
    {
        var (connection, client) = await ConnectSlowReaderAsync(linger ? TimeSpan.FromSeconds(1) : null, closeTimeout: TimeSpan.FromSeconds(1), sendBuffer: 4096);
        using var _ = client;

        // More than the kernel's buffers take: the rest stays in NetStream's pipe, under MaxWriteBufferSize.
        await connection.Transport.Output.WriteAsync(new byte[60 * 1024]);
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);

        Assert.True(client.Poll(Listeners.Timeout, SelectMode.SelectError), "No reset came.");
    }

    [Fact]
    public async Task A_sub_second_linger_is_rounded_up_for_the_kernel_never_down_to_an_abortive_zero()
    {
        var (connection, client) = await ConnectSlowReaderAsync(TimeSpan.FromMilliseconds(500));
        using var _ = client;
        var socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;

        // SO_LINGER {on, 0} would make any close of this socket that NetStream does not time itself a reset.
        Assert.Equal(new LingerOption(true, 1), socket.LingerState);

        // NetStream's own lingering close times the half second itself: a peer that reads gets everything, then FIN.
        await connection.Transport.Output.WriteAsync("bye"u8.ToArray());
        await connection.DisposeAsync().AsTask().WaitAsync(Listeners.Timeout);
        Assert.Equal("bye"u8.ToArray(), await ReadToEndAsync(client));
    }

    /// <summary>A client whose receive window a few KiB fill, to a server whose send buffer holds the rest.</summary>
    private static async Task<(Microsoft.AspNetCore.Connections.ConnectionContext Connection, Socket Client)> ConnectSlowReaderAsync(
        TimeSpan? linger, TimeSpan? closeTimeout = null, int sendBuffer = 1024 * 1024)
    {
        var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.Linger = linger;
            o.CloseTimeout = closeTimeout ?? o.CloseTimeout;
            o.SendBufferSize = sendBuffer;
        });
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        // The listener can go: its connections outlive it.
        await listener.DisposeAsync();
        return (connection, client);
    }

    private static async Task<byte[]> ReadToEndAsync(Socket client)
    {
        var timeout = Listeners.TimeoutToken();
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await client.ReceiveAsync(buffer, SocketFlags.None, timeout)) > 0)
        {
            received.Write(buffer, 0, read);
        }

        return received.ToArray();
    }
}
