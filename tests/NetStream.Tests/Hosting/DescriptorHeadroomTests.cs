using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;
using Xunit.Abstractions;

namespace NetStream.Tests.Hosting;

/// <summary>
/// <c>DescriptorReserve</c>: a server whose connections would take its last file descriptors stops accepting first,
/// so the runtime keeps the descriptors it needs (out of them, a .NET process dies), and resumes as they come back.
/// </summary>
// Counts the process's descriptors, which tests running beside it open and close: it runs alone.
[Collection(NetStream.Tests.Transport.SerialSocketGroup.Name)]
public sealed partial class DescriptorHeadroomTests(ITestOutputHelper output)
{
    /// <summary>The child's RLIMIT_NOFILE from its start, as <c>ulimit -n</c> would set it.</summary>
    private const int Limit = 400;

    /// <summary>The default reserve under that limit (a tenth of it, at least 64).</summary>
    private const int Reserve = 64;

    [Fact]
    public void The_default_reserve_is_a_tenth_of_the_limit_within_64_and_1024()
    {
        Assert.Equal(64, DescriptorHeadroom.DefaultReserve(256));
        Assert.Equal(25, DescriptorHeadroom.DefaultReserve(50));
        Assert.Equal(Reserve, DescriptorHeadroom.DefaultReserve(Limit));
        Assert.Equal(102, DescriptorHeadroom.DefaultReserve(1024));
        Assert.Equal(1024, DescriptorHeadroom.DefaultReserve(1_048_576));
    }

    [Fact]
    public void Room_is_what_the_reserve_leaves_under_the_limit_of_this_process()
    {
        var headroom = new DescriptorHeadroom();
        var limit = DescriptorHeadroom.ReadLimit();
        var open = Listeners.OpenDescriptorCount();

        Assert.True(headroom.HasRoom(0, out _, out _));
        Assert.True(headroom.HasRoom((int)(limit - open - 50), out _, out _));
        Assert.False(headroom.HasRoom((int)(limit - open + 50), out var counted, out var read));
        Assert.Equal(limit, read);
        Assert.InRange(counted, open - 20, open + 20);
    }

    [Fact]
    public async Task A_server_near_its_descriptor_limit_holds_back_instead_of_running_out_and_accepts_again_when_descriptors_come_back()
    {
        var directory = Listeners.TempDirectory();
        using var server = ChildProcess.Start(
            "/usr/bin/prlimit",
            [$"--nofile={Limit}:{Limit}", EchoServerSample.DotnetHost(), EchoServerSample.DllPath()],
            new Dictionary<string, string>(EchoServerSample.TestEnvironment(Path.Combine(directory, "echo.sock")))
            {
                ["NetStream__Hooks__MaxConnectionsPerIp"] = "1000",
            });
        var clients = new List<Socket>();
        try
        {
            var endPoint = await EchoServerSample.TcpEndPointAsync(server);

            // Idle clients until the server says it holds back: well before the limit, whatever its start-up took.
            var holding = server.WaitForLineAsync(l => l.Contains("NetStream.Transport[25]"), Listeners.Timeout);
            while (!holding.IsCompleted && clients.Count < Limit)
            {
                clients.Add(await Listeners.ConnectAsync(endPoint));
            }

            var said = await holding;
            Assert.Contains($"another connection would leave fewer than DescriptorReserve = {Reserve} free", said);
            Assert.InRange(server.OpenDescriptorCount(), Limit - Reserve - 8, Limit - Reserve + 8);

            // More peers wait in the kernel's backlog, not accepted: nothing runs out, nothing is said again.
            for (var i = 0; i < 16; i++)
            {
                clients.Add(await Listeners.ConnectAsync(endPoint));
            }

            foreach (var client in clients)
            {
                client.Dispose();
            }

            clients.Clear();
            await server.WaitForLineAsync(l => l.Contains("NetStream.Transport[26]"), Listeners.Timeout);
            var payload = EchoClient.RandomBytes(16 * 1024);
            Assert.Equal(payload, await EchoClient.RoundTripAsync(endPoint, payload));

            Assert.False(server.HasExited, server.Output);
            Assert.Equal(1, server.CountLines(l => l.Contains("NetStream.Transport[25]")));
            Assert.Equal(0, server.CountLines(l => l.Contains("NetStream.Transport[4]") || l.Contains("NetStream.Transport[5]")));
        }
        finally
        {
            output.WriteLine(server.Output);
            foreach (var client in clients)
            {
                client.Dispose();
            }

            server.Dispose();
            Directory.Delete(directory, recursive: true);
        }
    }
}
