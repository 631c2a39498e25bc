using System.Diagnostics;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// Debian tools some tests run (strace to inject accept errors): installed with apt-get on first use when missing, so
/// that <c>dotnet test</c> on a fresh machine needs nothing done by hand.
/// </summary>
internal static class DebianTools
{
    private static readonly SemaphoreSlim Gate = new(1);

    /// <summary>The path of <paramref name="command"/>, installing <paramref name="package"/> first if needed.</summary>
    public static async Task<string> RequireAsync(string command, string package)
    {
        await Gate.WaitAsync();
        try
        {
            if (Find(command) is { } found)
            {
                return found;
            }

            // apt-get update first: on a fresh machine the package lists may be empty.
            foreach (var arguments in new[] { "update -q", $"install -y -q {package}" })
            {
                var info = new ProcessStartInfo("apt-get", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
                info.Environment["DEBIAN_FRONTEND"] = "noninteractive";
                using var apt = Process.Start(info)!;
                var output = apt.StandardOutput.ReadToEndAsync();
                var error = await apt.StandardError.ReadToEndAsync();
                await apt.WaitForExitAsync();
                Assert.True(apt.ExitCode == 0, $"apt-get {arguments} failed ({apt.ExitCode}); install {package} by hand: {error}{await output}");
            }

            return Find(command) ?? throw new InvalidOperationException($"{command} is not on PATH after installing {package}.");
        }
        finally
        {
            Gate.Release();
        }
    }

    private static string? Find(string command) =>
        // Daemons such as haproxy install into sbin, which a test run's PATH may lack.
        $"{Environment.GetEnvironmentVariable("PATH")}:/usr/sbin:/sbin"
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, command))
            .FirstOrDefault(File.Exists);
}
