using System.Net;
using System.Text.RegularExpressions;
using NetStream.Tests.Infrastructure;
using Xunit.Abstractions;

namespace NetStream.Tests.Hosting;

/// <summary>
/// Accept errors a loopback peer cannot cause, injected into the EchoServer sample's <c>accept4</c> calls by strace:
/// each is classified by its errno (the runtime's own exception drops ENOMEM's and EPROTO's), and a failure that never
/// clears is logged a bounded number of times and said once.
/// </summary>
public sealed partial class AcceptErrnoTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Out_of_memory_on_accept_is_exhaustion_warned_about_and_backed_off_from_not_an_error()
    {
        using var server = await StartAsync("error=ENOMEM:when=1..6");
        try
        {
            var warning = await server.WaitForLineAsync(l => l.Contains("NetStream.Transport[4]"), Listeners.Timeout);
            Assert.Contains("failed with ENOMEM: out of resources; backing off", warning);

            // Once the injected failures are spent, accepting goes on.
            var endPoint = await EchoServerSample.TcpEndPointAsync(server);
            Assert.Equal([1, 2, 3], await EchoClient.RoundTripAsync(endPoint, [1, 2, 3]));
            Assert.DoesNotContain("NetStream.Transport[5]", server.Output);
        }
        finally
        {
            output.WriteLine(server.Output);
        }
    }

    [Fact]
    public async Task A_protocol_error_on_accept_is_one_connection_s_retried_at_once_and_not_warned_about()
    {
        using var server = await StartAsync("error=EPROTO:when=1..6", ["--Logging:LogLevel:NetStream.Transport=Debug"]);
        try
        {
            var retried = await server.WaitForLineAsync(l => l.Contains("NetStream.Transport[3]"), Listeners.Timeout);
            Assert.Contains("failed with EPROTO; retrying at once", retried);

            var endPoint = await EchoServerSample.TcpEndPointAsync(server);
            Assert.Equal([1, 2, 3], await EchoClient.RoundTripAsync(endPoint, [1, 2, 3]));
            Assert.DoesNotContain("NetStream.Transport[4]", server.Output);
            Assert.DoesNotContain("NetStream.Transport[5]", server.Output);
        }
        finally
        {
            output.WriteLine(server.Output);
        }
    }

    [Fact]
    public async Task An_accept_error_that_never_clears_is_logged_a_bounded_number_of_times_and_said_once_to_stop_accepting()
    {
        // Every accept fails, for the whole test: the endpoint cannot accept, and must say so rather than log an error a
        // second for ever.
        using var server = await StartAsync("error=EINVAL", ["--Metrics:EnabledMetrics:NetStream=true"]);
        try
        {
            var said = await server.WaitForLineAsync(l => l.Contains("NetStream.Transport[23]"), TimeSpan.FromSeconds(40));
            Assert.Contains("is not accepting connections: every accept for 10 s failed, the last with EINVAL", said);
            await server.WaitForLineAsync(l => l.StartsWith("NetStream-netstream.listeners.not_accepting 1 ", StringComparison.Ordinal), Listeners.Timeout);

            // Over those 10 s and more each endpoint logged its error at most once per 5 s (three times), though it
            // retried about 20 times; and the streak is said once per endpoint.
            foreach (var endpoint in new[] { "127.0.0.1", "/" })
            {
                var errors = server.CountLines(l => l.Contains("NetStream.Transport[5]") && l.Contains($"Accept on {endpoint}"));
                Assert.InRange(errors, 1, 3);
            }

            Assert.InRange(server.CountLines(l => l.Contains("NetStream.Transport[23]")), 1, 2);
            Assert.False(server.HasExited, "The server ended.");
        }
        finally
        {
            output.WriteLine(server.Output);
        }
    }

    /// <summary>The sample under strace, which makes its <c>accept4</c> calls fail as <paramref name="injection"/> says.</summary>
    private static async Task<ChildProcess> StartAsync(string injection, string[]? arguments = null)
    {
        var strace = await DebianTools.RequireAsync("strace", "strace");
        var directory = Listeners.TempDirectory();
        var environment = EchoServerSample.TestEnvironment(Path.Combine(directory, "echo.sock"));

        // Only accept4 stops the tracee (seccomp), so the server runs at nearly full speed.
        return ChildProcess.Start(
            strace,
            ["-f", "-qq", "--seccomp-bpf", "-o", "/dev/null", "-e", "trace=accept4", "-e", $"inject=accept4:{injection}",
             EchoServerSample.DotnetHost(), EchoServerSample.DllPath(), .. arguments ?? []],
            environment);
    }
}
