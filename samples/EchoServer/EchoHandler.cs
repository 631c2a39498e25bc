using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace EchoServer;

/// <summary>Copies every byte a peer sends back to it, straight from the input pipe's buffers.</summary>
internal sealed class EchoHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;

        // No cancellation token: ConnectionClosed fires at the peer's FIN (as on Kestrel's Sockets transport), while
        // its last bytes may still wait in the input to be echoed; an abort ends the reads and flushes by itself.
        while (true)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            foreach (var segment in buffer)
            {
                output.Write(segment.Span);
            }

            input.AdvanceTo(buffer.End);
            var flush = await output.FlushAsync();
            if (result.IsCompleted || flush.IsCompleted)
            {
                return;
            }
        }
    }
}
