using System.Net;
using System.Net.Sockets;
using System.Text;
using NetStream.Hosting.Internal;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Hosting;

/// <summary>
/// <c>Type=notify</c> and the file descriptor store, end to end: the test plays systemd (a datagram socket as
/// <c>NOTIFY_SOCKET</c>, <c>FDSTORE</c> announcing a store), runs the EchoServer sample, keeps the listening socket the
/// sample stores, stops the sample, and restarts it the way systemd does: the stored socket on descriptor 3 with
/// <c>LISTEN_FDS</c> and <c>LISTEN_FDNAMES</c> (perl execs the sample, keeping its pid). A client that connects
/// between the two processes is served by the second.
/// </summary>
public sealed class SystemdNotifyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    // Moves descriptor $ENV{STORED} to 3, open across exec, sets the variables as systemd does, and execs @ARGV.
    private const string Systemd = """
        use strict; use warnings; use Fcntl; use POSIX ();
        defined POSIX::dup2($ENV{STORED}, 3) or die "dup2: $!";
        POSIX::close($ENV{STORED});
        open(my $fd3, '+<&=', 3) or die "fd 3: $!";
        fcntl($fd3, F_SETFD, 0) or die "fcntl: $!";
        $ENV{LISTEN_FDS} = 1; $ENV{LISTEN_PID} = $$; $ENV{LISTEN_FDNAMES} = 'Echo';
        exec { $ARGV[0] } @ARGV or die "exec: $!";
        """;

    [Fact]
    public async Task The_sample_says_ready_stores_its_socket_and_says_stopping_and_the_next_one_takes_the_socket_back()
    {
        var directory = Listeners.TempDirectory();
        var notifyPath = Path.Combine(directory, "notify");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        notify.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
        var environment = new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = notifyPath,
            ["FDSTORE"] = "4",
            ["DOTNET_CONSOLE_ANSI_COLOR"] = "false",
            ["Logging__Console__DisableColors"] = "true",
        };

        int port;
        int stored;
        using (var first = ChildProcess.Start(EchoServerSample.DotnetHost(), Sample("tcp://127.0.0.1:0", directory), environment))
        {
            var (message, descriptors) = await ReceiveAsync(notify, inheritable: true);
            Assert.Equal("FDSTORE=1\nFDNAME=Echo", message);
            stored = Assert.Single(descriptors);
            using (var peek = new Socket(new SafeSocketHandle(stored, ownsHandle: false)))
            {
                port = ((IPEndPoint)peek.LocalEndPoint!).Port;
                Assert.True(SocketConfigurator.IsListening(peek));
            }

            var (ready, _) = await ReceiveAsync(notify);
            Assert.StartsWith("READY=1\nSTATUS=NetStream: 2 endpoints serving, 1 listening sockets put into systemd's store", ready);
            Assert.Equal("up"u8.ToArray(), await EchoClient.RoundTripAsync(new IPEndPoint(IPAddress.Loopback, port), "up"u8.ToArray()));

            Assert.Equal(0, first.SendSigterm());
            Assert.Equal("STOPPING=1", (await ReceiveAsync(notify)).Message);
            await first.WaitForExitAsync(Timeout);
            Assert.True(first.ExitCode == 0, first.Output);
        }

        // Between the processes: the socket lives on in the store (here, this test), and its backlog holds the client.
        using var waiting = await Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await waiting.SendAsync("between"u8.ToArray());

        environment["STORED"] = stored.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using (var second = ChildProcess.Start("/usr/bin/perl", ["-e", Systemd, "--", EchoServerSample.DotnetHost(), .. Sample($"tcp://127.0.0.1:{port}", directory)], environment))
        {
            try
            {
                await second.WaitForLineAsync(line => line.Contains("takes its listening socket back from systemd"), Timeout);
                waiting.Shutdown(SocketShutdown.Send);
                Assert.Equal("between", Encoding.ASCII.GetString(await Listeners.ReceiveAsync(waiting, 100)));
                // Taken from systemd's store, where it stays: not stored again.
                Assert.StartsWith("READY=1\nSTATUS=NetStream: 2 endpoints serving, 0 listening sockets put into systemd's store", (await ReceiveAsync(notify)).Message);
            }
            finally
            {
                second.SendSigterm();
                await second.WaitForExitAsync(Timeout);
                Assert.Equal("STOPPING=1", (await ReceiveAsync(notify)).Message);
            }
        }

        // The endpoint moved (a new port): the stored socket no longer belongs to any endpoint, and leaves the store.
        using var third = ChildProcess.Start("/usr/bin/perl", ["-e", Systemd, "--", EchoServerSample.DotnetHost(), .. Sample("tcp://127.0.0.1:0", directory)], environment);
        Descriptor.Close((ulong)stored); // the children have their own copies
        try
        {
            Assert.Equal("FDSTOREREMOVE=1\nFDNAME=Echo", (await ReceiveAsync(notify)).Message);
            var (moved, descriptors) = await ReceiveAsync(notify);
            Assert.Equal("FDSTORE=1\nFDNAME=Echo", moved);
            Descriptor.Close((ulong)Assert.Single(descriptors));
            Assert.StartsWith("READY=1", (await ReceiveAsync(notify)).Message);
        }
        finally
        {
            third.SendSigterm();
            await third.WaitForExitAsync(Timeout);
        }
    }

    [Fact]
    public void A_passed_socket_is_found_by_name_only_when_exactly_one_has_it()
    {
        var systemd = SystemdSockets.Parse("7", "3", "Echo:web:web", processId: 7);

        Assert.Equal(3, systemd.Named("Echo"));
        Assert.Null(systemd.Named("web"));
        Assert.Null(systemd.Named("other"));
        Assert.Null(SystemdSockets.Parse(null, null, null, processId: 7).Named("Echo"));
    }

    private static string[] Sample(string echoUrl, string directory) =>
    [
        EchoServerSample.DllPath(),
        $"--NetStream:Endpoints:Echo:Url={echoUrl}",
        $"--NetStream:Endpoints:EchoUnix:Url=unix:{Path.Combine(directory, "echo.sock")}",
    ];

    private static async Task<(string Message, int[] Descriptors)> ReceiveAsync(Socket notify, bool inheritable = false)
    {
        // A blocking receive with the socket's timeout, off the test's thread.
        var (length, descriptors, buffer) = await Task.Run(() =>
        {
            var buffer = new byte[4096];
            var (length, descriptors) = ScmRights.Receive(notify, buffer, inheritable);
            return (length, descriptors, buffer);
        });
        return (Encoding.UTF8.GetString(buffer, 0, length), descriptors);
    }
}
