using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

public sealed class WebSocketTests
{
    private static void EchoWebSocket(WebApplication app)
    {
        app.UseWebSockets();
        app.Run(async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            while (await ReceiveMessageAsync(socket, context.RequestAborted) is { } message)
            {
                await socket.SendAsync(message.Bytes, message.Type, endOfMessage: true, context.RequestAborted);
            }

            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", context.RequestAborted);
        });
    }

    [Fact]
    public async Task WebSocket_echoes_text_and_binary_messages_byte_exact()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(EchoWebSocket, timeout.Token);
        using var client = new ClientWebSocket();
        await client.ConnectAsync(new Uri($"ws://{app.EndPoint}/ws"), timeout.Token);

        var large = new byte[100 * 1024];
        Random.Shared.NextBytes(large);
        (byte[] Bytes, WebSocketMessageType Type)[] messages =
        [
            (Encoding.UTF8.GetBytes("hello, NetStream"), WebSocketMessageType.Text),
            ([0, 1, 2, 255, 254, 253], WebSocketMessageType.Binary),
            (large, WebSocketMessageType.Binary),
            (Encoding.UTF8.GetBytes("après"), WebSocketMessageType.Text),
        ];

        foreach (var (bytes, type) in messages)
        {
            await client.SendAsync(bytes, type, endOfMessage: true, timeout.Token);
            var echo = await ReceiveMessageAsync(client, timeout.Token);

            Assert.NotNull(echo);
            Assert.Equal(type, echo.Value.Type);
            Assert.True(bytes.AsSpan().SequenceEqual(echo.Value.Bytes), $"echo of a {bytes.Length}-byte {type} message differs");
        }

        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        Assert.Null(await ReceiveMessageAsync(client, timeout.Token));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
    }

    /// <summary>One whole message, however many frames it came in; <see langword="null"/> on a close frame.</summary>
    private static async Task<(byte[] Bytes, WebSocketMessageType Type)?> ReceiveMessageAsync(WebSocket socket, CancellationToken cancellationToken)
    {
        using var message = new MemoryStream();
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return (message.ToArray(), result.MessageType);
            }
        }
    }
}
