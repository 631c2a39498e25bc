using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Transport;

/// <summary>
/// A callback of the application's that throws on a token NetStream cancels on a pool or timer thread must not end the
/// process: ConnectionClosed (logged, event 21, as Kestrel's Sockets transport does) and the hooks' token at the chain's
/// time limit. Each scenario runs in a child process (<see cref="StartupHook"/>).
/// </summary>
public sealed class CallbackFailureTests
{
    [Theory]
    [InlineData("connection-closed-callback-throws")]
    [InlineData("hook-token-callback-throws-at-deadline")]
    public async Task A_throwing_callback_on_a_token_NetStream_cancels_does_not_end_the_process(string scenario)
    {
        var dll = typeof(CallbackFailureTests).Assembly.Location;
        using var child = ChildProcess.Start(
            EchoServerSample.DotnetHost(),
            [dll],
            new Dictionary<string, string> { ["DOTNET_STARTUP_HOOKS"] = dll, [StartupHook.ScenarioVariable] = scenario });
        await child.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(child.ExitCode == 0 && child.Output.Contains("SURVIVED"), $"The process ended with exit code {child.ExitCode}. Its output:\n{child.Output}");
    }
}
