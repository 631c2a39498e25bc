using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// Where the EchoServer sample is built and what runs it, for the tests that run it as a <see cref="ChildProcess"/>.
/// The test project builds the sample and records where it is (RecordEchoServerPath in NetStream.Tests.csproj).
/// </summary>
internal static partial class EchoServerSample
{
    /// <summary>The built EchoServer.dll.</summary>
    public static string DllPath()
    {
        var path = typeof(EchoServerSample).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "EchoServerPath").Value;
        Assert.True(File.Exists(path), $"The EchoServer sample is not built at '{path}'");
        return path!;
    }

    /// <summary>The dotnet muxer running these tests (testhost runs under it), else the SDK's DOTNET_HOST_PATH, else
    /// the one on PATH.</summary>
    public static string DotnetHost() =>
        Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet"
            ? Environment.ProcessPath!
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    /// <summary>Runs the sample under <see cref="DotnetHost"/> with <paramref name="arguments"/> and
    /// <paramref name="environment"/>.</summary>
    public static ChildProcess Start(IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        ChildProcess.Start(DotnetHost(), [DllPath(), .. arguments], environment);

    /// <summary>
    /// The environment of a sample run by a test: its TCP endpoint on 127.0.0.1 port 0 and its Unix socket at
    /// <paramref name="unixSocketPath"/> (never the sample's fixed endpoints), its log on stdout one line an event.
    /// </summary>
    public static Dictionary<string, string> TestEnvironment(string unixSocketPath) => new()
    {
        ["NetStream__Endpoints__Echo__Url"] = "tcp://127.0.0.1:0",
        ["NetStream__Endpoints__EchoUnix__Url"] = "unix:" + unixSocketPath,
        ["Logging__Console__FormatterName"] = "simple",
        ["Logging__Console__FormatterOptions__SingleLine"] = "true",
        ["Logging__Console__FormatterOptions__ColorBehavior"] = "Disabled",
    };

    /// <summary>The sample's TCP endpoint, from the transport's start-up line (event 1, "listening on").</summary>
    public static async Task<IPEndPoint> TcpEndPointAsync(ChildProcess server)
    {
        var line = await server.WaitForLineAsync(l => ListeningOnLoopback().IsMatch(l), Listeners.Timeout);
        return IPEndPoint.Parse(ListeningOnLoopback().Match(line).Groups[1].Value);
    }

    [GeneratedRegex(@"NetStream\.Transport\[1\] NetStream \(\w+\) listening on (127\.0\.0\.1:\d+),")]
    private static partial Regex ListeningOnLoopback();
}
