using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Hooks;

#pragma warning disable CA1050 // A startup hook must be a type named StartupHook outside any namespace.

/// <summary>
/// Runs a scenario that could end its process in a child process, not in the test host: the test starts
/// <c>dotnet NetStream.Tests.dll</c> with DOTNET_STARTUP_HOOKS naming this assembly and NETSTREAM_TEST_SCENARIO naming
/// the scenario (see <see cref="NetStream.Tests.Transport.CallbackFailureTests"/>); the child prints SURVIVED and exits 0
/// if the process lived through it.
/// </summary>
public static class StartupHook
{
    public const string ScenarioVariable = "NETSTREAM_TEST_SCENARIO";

    public static void Initialize()
    {
        var scenario = Environment.GetEnvironmentVariable(ScenarioVariable);
        if (string.IsNullOrEmpty(scenario))
        {
            return;
        }

        Environment.SetEnvironmentVariable("DOTNET_STARTUP_HOOKS", null);
        try
        {
            switch (scenario)
            {
                case "connection-closed-callback-throws":
                    ConnectionClosedCallbackThrowsAsync().GetAwaiter().GetResult();
                    break;
                case "hook-token-callback-throws-at-deadline":
                    HookTokenCallbackThrowsAtDeadlineAsync().GetAwaiter().GetResult();
                    break;
                default:
                    Console.WriteLine("UNKNOWN SCENARIO " + scenario);
                    Environment.Exit(3);
                    break;
            }
        }
        catch (Exception e)
        {
            Console.WriteLine("SCENARIO FAILED " + e);
            Environment.Exit(2);
        }

        Console.WriteLine("SURVIVED");
        Console.Out.Flush();
        Environment.Exit(0);
    }

    /// <summary>The peer closes; the application's ConnectionClosed callback throws (e.g. it cancels a disposed source).</summary>
    private static async Task ConnectionClosedCallbackThrowsAsync()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var disposed = new CancellationTokenSource();
        disposed.Dispose();
        connection.ConnectionClosed.Register(() =>
        {
            fired.TrySetResult();
            disposed.Cancel(); // ObjectDisposedException: the application's bug, which the transport must contain
        });
        Console.WriteLine("peer closes");
        client.Close();
        await fired.Task.WaitAsync(Listeners.Timeout);
        Console.WriteLine("ConnectionClosed fired");
        await Task.Delay(1000); // a window: the process would have ended by now
        await connection.DisposeAsync();
    }

    /// <summary>A slowloris peer (connects, sends nothing) keeps a hook waiting until the chain's time limit; the hook's token callback throws.</summary>
    private static async Task HookTokenCallbackThrowsAtDeadlineAsync()
    {
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Hooks:Timeout"] = "00:00:00.5";
        await using var host = await EchoHost.StartAsync(settings, netStream: netStream => netStream.AddAcceptedHook(async context =>
        {
            var disposed = new CancellationTokenSource();
            disposed.Dispose();
            context.CancellationToken.Register(() =>
            {
                fired.TrySetResult();
                disposed.Cancel(); // ObjectDisposedException
            });
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return AcceptedResult.Pass;
        }));
        using var client = await Listeners.ConnectAsync(host.EndPoint);
        Console.WriteLine("slowloris connected");
        await fired.Task.WaitAsync(Listeners.Timeout);
        Console.WriteLine("deadline fired");
        await Task.Delay(1000); // a window: the process would have ended by now
    }
}
