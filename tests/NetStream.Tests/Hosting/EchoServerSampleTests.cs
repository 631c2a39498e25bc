using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

/// <summary>The EchoServer sample as a user runs it: its own process, stopped with Ctrl+C (SIGINT) or SIGTERM.</summary>
public sealed partial class EchoServerSampleTests
{
    [Theory]
    [InlineData("SIGINT")]
    [InlineData("SIGTERM")]
    public async Task The_sample_echoes_on_tcp_and_unix_and_stops_cleanly_on_a_signal(string signal)
    {
        var directory = Listeners.TempDirectory();
        var socketPath = Path.Combine(directory, "echo.sock");
        // Through env(1) with SIGINT back to its default: a test run started in the background of a script inherits
        // SIGINT ignored, and .NET then leaves it ignored, as a program should.
        using var child = ChildProcess.Start("/usr/bin/env", ["--default-signal=INT", EchoServerSample.DotnetHost(), EchoServerSample.DllPath()], new Dictionary<string, string>
        {
            // Port 0 and a Unix socket of the test's own, never the sample's fixed endpoints.
            ["NetStream__Endpoints__Echo__Url"] = "tcp://127.0.0.1:0",
            ["NetStream__Endpoints__EchoUnix__Url"] = "unix:" + socketPath,
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
            ["Logging__Console__FormatterOptions__ColorBehavior"] = "Disabled",
        });
        try
        {
            var line = await child.WaitForLineAsync(l => EchoListening().IsMatch(l), Listeners.Timeout);
            var tcp = IPEndPoint.Parse(EchoListening().Match(line).Groups[1].Value);
            await child.WaitForLineAsync(l => l.Contains("Application started."), Listeners.Timeout);

            var data = EchoClient.RandomBytes(64 * 1024);
            Assert.Equal(data, await EchoClient.RoundTripAsync(tcp, data));
            Assert.Equal(data, await EchoClient.RoundTripAsync(new UnixDomainSocketEndPoint(socketPath), data));

            Assert.Equal(0, signal == "SIGINT" ? child.SendSigint() : child.SendSigterm());
            await child.WaitForExitAsync(Listeners.Timeout);

            Assert.True(child.ExitCode == 0, child.Output);
            Assert.False(File.Exists(socketPath));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [GeneratedRegex(@"NetStream endpoint Echo listening on (127\.0\.0\.1:\d+)\.")]
    private static partial Regex EchoListening();
}
