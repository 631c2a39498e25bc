using System.Reflection;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// Where the EchoServer sample is built and what runs it, for the tests that run it as a <see cref="ChildProcess"/>.
/// The test project builds the sample and records where it is (RecordEchoServerPath in NetStream.Tests.csproj).
/// </summary>
internal static class EchoServerSample
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
}
