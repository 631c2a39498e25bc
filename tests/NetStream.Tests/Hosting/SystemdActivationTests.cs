using System.Net;
using System.Net.Sockets;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>
/// systemd socket activation end to end: perl plays systemd (a listening socket on descriptor 3, LISTEN_PID,
/// LISTEN_FDS, LISTEN_FDNAMES) and execs the EchoServer sample, which keeps perl's pid.
/// </summary>
public sealed class SystemdActivationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    // The sample's console log must not wait for a terminal, and its colours would split the lines.
    private static readonly Dictionary<string, string> NoColours = new()
    {
        ["DOTNET_CONSOLE_ANSI_COLOR"] = "false",
        ["Logging__Console__DisableColors"] = "true",
    };

    // Binds 127.0.0.1 port 0, prints the port, moves the socket to descriptor 3 open across exec, and execs @ARGV.
    private const string Systemd = """
        use strict; use warnings; use Socket; use Fcntl; use POSIX ();
        socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
        bind($s, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
        listen($s, 16) or die "listen: $!";
        my ($port) = unpack_sockaddr_in(getsockname($s));
        if (fileno($s) != 3) { defined POSIX::dup2(fileno($s), 3) or die "dup2: $!"; }
        open(my $fd3, '+<&=', 3) or die "fd 3: $!";
        fcntl($fd3, F_SETFD, 0) or die "fcntl: $!";
        $ENV{LISTEN_FDS} = 1; $ENV{LISTEN_PID} = $$; $ENV{LISTEN_FDNAMES} = 'echo';
        $| = 1; print "port=$port\n";
        exec { $ARGV[0] } @ARGV or die "exec: $!";
        """;

    [Theory]
    [InlineData("systemd:echo")]
    [InlineData("systemd:0")]
    public async Task The_echo_server_serves_the_socket_systemd_passed_and_stops_on_SIGTERM(string url)
    {
        var socketPath = Path.Combine(Listeners.TempDirectory(), "echo.sock");
        using var child = StartUnderSystemd(url, "unix:" + socketPath);
        try
        {
            var port = int.Parse((await child.WaitForLineAsync(line => line.StartsWith("port=", StringComparison.Ordinal), Timeout))["port=".Length..]);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            await child.WaitForLineAsync(line => line.Contains($"NetStream endpoint Echo listening on {endPoint}."), Timeout);

            var data = EchoClient.RandomBytes(100_000);
            Assert.Equal(data, await EchoClient.RoundTripAsync(endPoint, data));

            Assert.Equal(0, child.SendSigterm());
            await child.WaitForExitAsync(Timeout);

            Assert.True(child.ExitCode == 0, child.Output);
            Assert.False(File.Exists(socketPath));
            var refused = await Assert.ThrowsAsync<SocketException>(() => Listeners.ConnectAsync(endPoint));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(socketPath)!, recursive: true);
        }
    }

    [Theory]
    [InlineData("systemd:web", null, "NetStream:Endpoints:Echo:Url = 'systemd:web': systemd passed no socket named 'web' (0 = 'echo')")]
    [InlineData("systemd:1", null, "NetStream:Endpoints:Echo:Url = 'systemd:1': systemd passed 1 socket, so the index runs from 0 to 0")]
    [InlineData("systemd:", "systemd:echo", "NetStream:Endpoints:EchoUnix:Url = 'systemd:echo': endpoint Echo already uses the socket systemd passed as descriptor 3")]
    public async Task The_echo_server_fails_start_naming_the_endpoint_when_its_url_picks_no_free_passed_socket(string url, string? otherUrl, string expected)
    {
        var socketPath = Path.Combine(Listeners.TempDirectory(), "echo.sock");
        using var child = StartUnderSystemd(url, otherUrl ?? "unix:" + socketPath);
        await child.WaitForExitAsync(Timeout);

        Assert.NotEqual(0, child.ExitCode);
        Assert.Contains(expected, child.Output);
        Directory.Delete(Path.GetDirectoryName(socketPath)!, recursive: true);
    }

    /// <summary>perl, as systemd, execs the sample with its two endpoints at these URLs.</summary>
    private static ChildProcess StartUnderSystemd(string echoUrl, string echoUnixUrl) => ChildProcess.Start(
        "/usr/bin/perl",
        ["-e", Systemd, "--", EchoServerSample.DotnetHost(), EchoServerSample.DllPath(),
            $"--NetStream:Endpoints:Echo:Url={echoUrl}",
            $"--NetStream:Endpoints:EchoUnix:Url={echoUnixUrl}"],
        NoColours);
}
