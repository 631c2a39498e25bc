using System.Net.Sockets;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Transport;

/// <summary>Both pipes are bounded: a peer or an application that does not keep up is held back, not buffered for.</summary>
public sealed class BackPressureTests
{
    private const int Limit = 64 * 1024;

    [Fact]
    public async Task An_application_that_does_not_read_stops_the_receive_loop_and_the_kernel_holds_the_rest()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.MaxReadBufferSize = Limit;
            o.ReceiveBufferSize = 1024 * 1024;
        });
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        var socket = ListenTests.AcceptedSocket(connection);
        var payload = EchoClient.RandomBytes(8 * 1024 * 1024);
        var sending = client.SendAsync(payload);

        // Nobody consumes the input: past the limit the transport stops reading, and what the client sends piles up in
        // the server's socket. Without the pause the receive loop would go on moving it into the pipe.
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        var input = connection.Transport.Input;
        var seen = await input.ReadAsync(timeout.Token);
        while (seen.Buffer.Length < Limit)
        {
            input.AdvanceTo(seen.Buffer.Start, seen.Buffer.End);
            seen = await input.ReadAsync(timeout.Token);
        }

        input.AdvanceTo(seen.Buffer.Start);
        while (socket.Available < 256 * 1024)
        {
            await Task.Delay(10, timeout.Token);
        }

        Assert.True(input.TryRead(out var held));
        Assert.InRange(held.Buffer.Length, Limit, 2 * Limit);
        input.AdvanceTo(held.Buffer.Start);

        // Read, it all arrives, in order.
        var received = new MemoryStream();
        while (received.Length < payload.Length)
        {
            var result = await input.ReadAsync(timeout.Token);
            foreach (var segment in result.Buffer)
            {
                received.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
        }

        await sending.WaitAsync(timeout.Token);
        Assert.Equal(payload, received.ToArray());
    }

    [Fact]
    public async Task A_peer_that_does_not_read_pauses_the_applications_writes()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.MaxWriteBufferSize = Limit;
            o.SendBufferSize = Limit;
        });
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = Limit };
        await client.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        try
        {
            await WritesWaitForThePeerAsync(client, connection);
        }
        finally
        {
            // The client first: a connection whose peer reads nothing cannot finish sending, nor be disposed.
            client.Dispose();
            await connection.DisposeAsync();
        }
    }

    private static async Task WritesWaitForThePeerAsync(Socket client, Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        var payload = EchoClient.RandomBytes(16 * 1024 * 1024);
        var output = connection.Transport.Output;

        // The client reads nothing: once the kernel's buffers and the pipe's limit are full, a write waits. Without
        // the limit every write would complete at once, and the whole payload would sit in the pipe.
        var written = 0;
        ValueTask<System.IO.Pipelines.FlushResult> flush;
        do
        {
            flush = output.WriteAsync(payload.AsMemory(written, Limit));
            written += Limit;
        }
        while (flush.IsCompleted && written < payload.Length);

        Assert.False(flush.IsCompleted, "Every write completed at once: the output pipe has no limit.");
        Assert.True(written < payload.Length / 2, $"{written} bytes were taken before a write waited.");

        // The client reads: the write completes, the rest goes out, every byte arrives.
        var reading = Listeners.ReceiveAsync(client, payload.Length + 1);
        await flush.AsTask().WaitAsync(Listeners.Timeout);
        while (written < payload.Length)
        {
            await output.WriteAsync(payload.AsMemory(written, Limit));
            written += Limit;
        }

        await output.CompleteAsync();
        Assert.Equal(payload, await reading.WaitAsync(Listeners.Timeout));
    }
}
