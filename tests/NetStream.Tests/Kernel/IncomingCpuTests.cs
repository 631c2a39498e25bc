using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;
using NetStream.Transport.Internal.Engines.Epoll;

namespace NetStream.Tests.Kernel;

public sealed class IncomingCpuTests
{
    private const int SoIncomingCpu = 49;

    [Fact]
    public async Task Each_connection_is_served_on_the_loop_pinned_to_the_cpu_that_received_its_packets()
    {
        var cpus = Environment.ProcessorCount;
        await using var listener = await Listeners.BindLoopbackAsync(o =>
        {
            o.Engine = NetStreamEngine.Epoll;
            o.EngineThreads = cpus;
            o.IncomingCpu = true;
        });

        for (var i = 0; i < 8; i++)
        {
            using var client = await Listeners.ConnectAsync(listener.EndPoint);
            await using var connection = (NetStreamConnection)(await listener.AcceptAsync(Listeners.TimeoutToken()))!;
            // The client sends nothing after the handshake: the CPU the kernel noted for the socket stays what it was.
            var socket = connection.Features.Get<IConnectionSocketFeature>()!.Socket;
            var incoming = SocketConfigurator.GetRawInt(socket, SocketOptionNames.SolSocket, SoIncomingCpu);

            var loop = ((EpollConnectionIo)connection.Io).Loop;
            Assert.Equal(incoming, loop.Cpu);
        }

        // Each pinned loop thread ("ns-epoll 2/2@1") may run on its one CPU only.
        var pinned = LoopThreadCpus().Where(t => t.Name.Contains('@', StringComparison.Ordinal)).ToList();
        Assert.Equal(cpus, pinned.Count(t => t.Name.EndsWith($"/{cpus}@{t.Cpus}", StringComparison.Ordinal)));
    }

    [Fact]
    public void IncomingCpu_without_the_epoll_engine_is_an_error_naming_both()
    {
        var options = new NetStreamTransportOptions { Engine = NetStreamEngine.Sockets, IncomingCpu = true };

        var result = new NetStreamTransportOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("NetStream:IncomingCpu = 'True': needs Engine = Epoll", result.FailureMessage);
    }

    /// <summary>The epoll loop threads of this process and the CPUs each may run on (<c>Cpus_allowed_list</c>).</summary>
    private static IEnumerable<(string Name, string Cpus)> LoopThreadCpus() => LoopThreads.Read("status")
        .Select(t => (t.Name, t.Text.Split('\n').First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))["Cpus_allowed_list:".Length..].Trim()));
}
