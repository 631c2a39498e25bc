using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Transport;

/// <summary>
/// Every connection ends, so its end must be cheap: no exception thrown inside NetStream whichever side ends it.
/// Watches first-chance exceptions of the whole process, so it runs alone.
/// </summary>
[Collection(SerialSocketGroup.Name)]
public sealed class TeardownTests
{
    public enum Ending
    {
        ServerCompletesOutput,
        ClientSendsFin,
        ServerAborts,
        ClientResets,
    }

    [Theory]
    [InlineData(Ending.ServerCompletesOutput)]
    [InlineData(Ending.ClientSendsFin)]
    [InlineData(Ending.ServerAborts)]
    [InlineData(Ending.ClientResets)]
    public async Task A_connection_ends_without_an_exception_thrown_inside_NetStream(Ending ending)
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        await EndOneAsync(listener, ending); // Warm-up: first-use paths of the runtime are not what is measured.

        var thrown = new List<string>();
        void OnFirstChance(object? sender, FirstChanceExceptionEventArgs e)
        {
            // Thrown by NetStream's own code. (A socket disposed under a call that was just being made makes the
            // runtime throw ObjectDisposedException through NetStream's frames: a rare race, not a per-connection cost.)
            if (e.Exception.TargetSite?.DeclaringType?.Namespace?.StartsWith("NetStream.Transport", StringComparison.Ordinal) == true)
            {
                lock (thrown)
                {
                    thrown.Add($"{e.Exception.GetType().Name}: {e.Exception.Message} at {e.Exception.TargetSite}");
                }
            }
        }

        AppDomain.CurrentDomain.FirstChanceException += OnFirstChance;
        try
        {
            for (var i = 0; i < 20; i++)
            {
                await EndOneAsync(listener, ending);
            }
        }
        finally
        {
            AppDomain.CurrentDomain.FirstChanceException -= OnFirstChance;
        }

        Assert.Empty(thrown);
    }

    private static async Task EndOneAsync(NetStream.Transport.NetStreamListener listener, Ending ending)
    {
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        await client.SendAsync("hello"u8.ToArray());
        var read = await connection.Transport.Input.ReadAsync(Listeners.TimeoutToken());
        connection.Transport.Input.AdvanceTo(read.Buffer.End);

        switch (ending)
        {
            case Ending.ServerCompletesOutput:
                await connection.Transport.Output.CompleteAsync();
                await ReadToEndAsync(client);
                break;
            case Ending.ClientSendsFin:
                client.Shutdown(SocketShutdown.Send);
                while (!(await connection.Transport.Input.ReadAsync(Listeners.TimeoutToken())).IsCompleted)
                {
                }

                break;
            case Ending.ServerAborts:
                connection.Abort();
                await ReadToEndAsync(client);
                break;
            case Ending.ClientResets:
                client.LingerState = new LingerOption(true, 0);
                client.Close();
                try
                {
                    while (!(await connection.Transport.Input.ReadAsync(Listeners.TimeoutToken())).IsCompleted)
                    {
                    }
                }
                catch (Microsoft.AspNetCore.Connections.ConnectionResetException)
                {
                    // What the application sees of a reset: made, not thrown, by the transport; the pipe throws it.
                }

                break;
        }

        await connection.DisposeAsync();
    }

    private static async Task ReadToEndAsync(Socket client)
    {
        try
        {
            await Listeners.ReceiveAsync(client, 1);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
    }
}
