using System.Net;
using System.Net.Sockets;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

internal static class EchoClient
{
    public static byte[] RandomBytes(int count)
    {
        var data = new byte[count];
        Random.Shared.NextBytes(data);
        return data;
    }

    /// <summary>Sends <paramref name="data"/> then FIN while reading concurrently, and returns all bytes up to the server's FIN.</summary>
    public static async Task<byte[]> RoundTripAsync(EndPoint endPoint, byte[] data)
    {
        using var client = await Listeners.ConnectAsync(endPoint);
        return await RoundTripAsync(client, data);
    }

    public static async Task<byte[]> RoundTripAsync(Socket client, byte[] data)
    {
        var receive = Listeners.ReceiveAsync(client, data.Length + 1);
        using (var timeout = new CancellationTokenSource(Listeners.Timeout))
        {
            await client.SendAsync(data, SocketFlags.None, timeout.Token);
        }

        client.Shutdown(SocketShutdown.Send);
        return await receive;
    }

    /// <summary>Sends <paramref name="data"/> and reads exactly as many bytes back, leaving the connection open.</summary>
    public static async Task<byte[]> EchoOnceAsync(Socket client, byte[] data)
    {
        var receive = Listeners.ReceiveAsync(client, data.Length);
        using (var timeout = new CancellationTokenSource(Listeners.Timeout))
        {
            await client.SendAsync(data, SocketFlags.None, timeout.Token);
        }

        return await receive;
    }

    /// <summary>True when the peer closed (FIN) or reset the connection; waits up to the test timeout.</summary>
    public static async Task<bool> SeesCloseAsync(Socket client)
    {
        try
        {
            using var timeout = new CancellationTokenSource(Listeners.Timeout);
            var buffer = new byte[64];
            while (true)
            {
                if (await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return true;
        }
    }

    /// <summary>
    /// Connects and returns true when the server closes or resets the connection unasked. On loopback a reset can
    /// arrive before the connect completes, and then it is the connect that reports it.
    /// </summary>
    public static async Task<bool> IsTurnedAwayAsync(EndPoint endPoint) => await HowTurnedAwayAsync(endPoint) is not null;

    /// <summary>
    /// How the server ended a connection it did not serve: <c>"reset"</c>, <c>"fin"</c>, or null if it sent data. Sends
    /// <paramref name="first"/> first, if given.
    /// </summary>
    public static async Task<string?> HowTurnedAwayAsync(EndPoint endPoint, byte[]? first = null)
    {
        try
        {
            using var client = await Listeners.ConnectAsync(endPoint);
            using var timeout = new CancellationTokenSource(Listeners.Timeout);
            if (first is not null)
            {
                await client.SendAsync(first, SocketFlags.None, timeout.Token);
            }

            return await client.ReceiveAsync(new byte[64], SocketFlags.None, timeout.Token) == 0 ? "fin" : null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return "reset";
        }
    }
}
