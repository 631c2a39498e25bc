using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using NetStream.Transport;

namespace NetStream.Tests.Parity;

/// <summary>
/// NetStream's buffering and scheduling defaults against Kestrel's Sockets transport, read from
/// <see cref="SocketTransportOptions"/> on the same machine (the backlog differs by design: SOMAXCONN).
/// The I/O queue count on other machines: the theory below, from Kestrel's rule (IOQueue.DetermineDefaultCount).
/// </summary>
public sealed class DefaultsParityTests
{
    [Fact]
    public void Buffering_and_scheduling_defaults_match_the_sockets_transport()
    {
        var sockets = new SocketTransportOptions();
        var netStream = new NetStreamTransportOptions();

        Assert.Equal(sockets.MaxReadBufferSize, netStream.MaxReadBufferSize);
        Assert.Equal(sockets.MaxWriteBufferSize, netStream.MaxWriteBufferSize);
        Assert.Equal(sockets.NoDelay, netStream.NoDelay);
        Assert.Equal(sockets.WaitForDataBeforeAllocatingBuffer, netStream.WaitForDataBeforeAllocatingBuffer);
        Assert.True(sockets.IOQueueCount == netStream.IOQueueCount,
            $"IOQueueCount on {Environment.ProcessorCount} processors: Sockets {sockets.IOQueueCount}, NetStream {netStream.IOQueueCount}");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(8, 8)]
    [InlineData(24, 16)]
    [InlineData(32, 16)]
    [InlineData(64, 32)]
    public void The_default_IO_queue_count_follows_the_processor_count_as_the_sockets_transport_does(int processors, int queues) =>
        Assert.Equal(queues, NetStreamTransportOptions.DefaultIOQueueCount(processors));
}
