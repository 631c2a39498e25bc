using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Transport;

/// <summary>
/// Whatever a connection was doing when it is disposed (a flush blocked, output completed, an abort racing the
/// dispose), a peer that never reads cannot make its close wait past the close timeout.
/// </summary>
public sealed class CloseTimeoutTests
{
    public enum Scenario
    {
        DisposeRightAfterUnflushedWrite,
        DisposeWhileFlushBlocked,
        CompleteOutputThenDispose,
        SmallSendThenBigThenDispose,
        AbortNullDuringDispose,
        AbortDuringDispose,
    }

    /// <summary>Far more than the kernel's buffers hold while the peer's window is shut.</summary>
    private const int Big = 4 * 1024 * 1024;

    private const int Rounds = 2;

    [Theory]
    [InlineData(Scenario.DisposeRightAfterUnflushedWrite)]
    [InlineData(Scenario.DisposeWhileFlushBlocked)]
    [InlineData(Scenario.CompleteOutputThenDispose)]
    [InlineData(Scenario.SmallSendThenBigThenDispose)]
    [InlineData(Scenario.AbortNullDuringDispose)]
    [InlineData(Scenario.AbortDuringDispose)]
    public async Task Dispose_ends_within_the_close_timeout_when_the_peer_never_reads(Scenario scenario)
    {
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.SendBufferSize = 4096;
            o.CloseTimeout = TimeSpan.FromSeconds(1);
        });

        for (var i = 0; i < Rounds; i++)
        {
            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
            await client.ConnectAsync(listener.EndPoint);
            var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
            var output = connection.Transport.Output;

            if (scenario == Scenario.SmallSendThenBigThenDispose)
            {
                await output.WriteAsync(new byte[10]);
            }

            WriteUnflushed(output, Big);
            if (scenario == Scenario.DisposeWhileFlushBlocked)
            {
                // A window for the flush to block on the shut window (if it has not, the test proves less).
                _ = output.FlushAsync().AsTask();
                await Task.Delay(300);
            }
            else if (scenario == Scenario.CompleteOutputThenDispose)
            {
                await output.CompleteAsync();
                await Task.Delay(300);
            }

            var disposing = connection.DisposeAsync().AsTask();
            if (scenario == Scenario.AbortNullDuringDispose)
            {
                await Task.Delay(100);
                connection.Abort(null!);
            }
            else if (scenario == Scenario.AbortDuringDispose)
            {
                await Task.Delay(100);
                connection.Abort(new ConnectionAbortedException("test"));
            }

            // The close timeout is 1 s: waiting for the test's timeout means the close was never timed.
            await disposing.WaitAsync(Listeners.Timeout);
        }
    }

    private static void WriteUnflushed(System.IO.Pipelines.PipeWriter output, int count)
    {
        while (count > 0)
        {
            var span = output.GetSpan(4096);
            var n = Math.Min(span.Length, count);
            output.Advance(n);
            count -= n;
        }
    }
}
