using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>
/// systemd socket activation end to end: perl plays systemd (a listening socket on descriptor 3, LISTEN_PID,
/// LISTEN_FDS, LISTEN_FDNAMES) and execs the EchoServer sample, which keeps perl's pid.
/// </summary>
public sealed partial class SystemdActivationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

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
        using var child = Child.Start(
            "/usr/bin/perl", "-e", Systemd, "--", DotnetHost(), EchoServerPath(),
            $"--NetStream:Endpoints:Echo:Url={url}",
            $"--NetStream:Endpoints:EchoUnix:Url=unix:{socketPath}");
        try
        {
            var port = int.Parse((await child.WaitForLineAsync(line => line.StartsWith("port=", StringComparison.Ordinal)))["port=".Length..]);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            await child.WaitForLineAsync(line => line.Contains($"NetStream endpoint Echo listening on {endPoint}."));

            var data = EchoClient.RandomBytes(100_000);
            Assert.Equal(data, await EchoClient.RoundTripAsync(endPoint, data));

            Assert.Equal(0, Kill(child.Process.Id, Sigterm));
            using (var timeout = new CancellationTokenSource(Timeout))
            {
                await child.Process.WaitForExitAsync(timeout.Token);
            }

            Assert.True(child.Process.ExitCode == 0, child.Output);
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
        using var child = Child.Start(
            "/usr/bin/perl", "-e", Systemd, "--", DotnetHost(), EchoServerPath(),
            $"--NetStream:Endpoints:Echo:Url={url}",
            $"--NetStream:Endpoints:EchoUnix:Url={otherUrl ?? "unix:" + socketPath}");
        using (var timeout = new CancellationTokenSource(Timeout))
        {
            await child.Process.WaitForExitAsync(timeout.Token);
        }

        Assert.NotEqual(0, child.Process.ExitCode);
        Assert.Contains(expected, child.Output);
        Directory.Delete(Path.GetDirectoryName(socketPath)!, recursive: true);
    }

    private const int Sigterm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>The dotnet muxer running these tests (testhost runs under it), else the one on PATH.</summary>
    private static string DotnetHost() =>
        Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";

    /// <summary>Where the build put the sample (see RecordEchoServerPath in the test project).</summary>
    private static string EchoServerPath()
    {
        var path = typeof(SystemdActivationTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "EchoServerPath").Value;
        Assert.True(File.Exists(path), $"EchoServer not built at '{path}'");
        return path!;
    }

    /// <summary>A child process whose stdout lines can be awaited; killed on dispose if still running.</summary>
    private sealed class Child : IDisposable
    {
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly StringBuilder _output = new();

        private Child(Process process) => Process = process;

        public Process Process { get; }

        /// <summary>Everything the child wrote so far, stdout and stderr, for failure messages.</summary>
        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static Child Start(string fileName, params string[] arguments)
        {
            var info = new ProcessStartInfo(fileName)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in arguments)
            {
                info.ArgumentList.Add(argument);
            }

            // The sample's console log must not wait for a terminal, and its colours would split the lines.
            info.Environment["DOTNET_CONSOLE_ANSI_COLOR"] = "false";
            info.Environment["Logging__Console__DisableColors"] = "true";
            var child = new Child(new Process { StartInfo = info });
            child.Process.OutputDataReceived += (_, e) => child.Received(e.Data, toChannel: true);
            child.Process.ErrorDataReceived += (_, e) => child.Received(e.Data, toChannel: false);
            child.Process.Start();
            child.Process.BeginOutputReadLine();
            child.Process.BeginErrorReadLine();
            return child;
        }

        /// <summary>The first stdout line from now on that matches; fails when the child ends first or on timeout.</summary>
        public async Task<string> WaitForLineAsync(Func<string, bool> match)
        {
            using var timeout = new CancellationTokenSource(Timeout);
            try
            {
                await foreach (var line in _lines.Reader.ReadAllAsync(timeout.Token))
                {
                    if (match(line))
                    {
                        return line;
                    }
                }
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"No awaited line within {Timeout}. Output:\n{Output}");
            }

            Assert.Fail($"The child ended without the awaited line. Output:\n{Output}");
            return "";
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5_000);
            }

            Process.Dispose();
        }

        private void Received(string? line, bool toChannel)
        {
            if (line is null)
            {
                if (toChannel)
                {
                    _lines.Writer.TryComplete();
                }

                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }

            if (toChannel)
            {
                _lines.Writer.TryWrite(line);
            }
        }
    }
}
