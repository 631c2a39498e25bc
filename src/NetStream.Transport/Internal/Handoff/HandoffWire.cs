using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// The handoff's messages: JSON objects, one per <c>SOCK_SEQPACKET</c> message (the kernel keeps their boundaries), the
/// descriptors riding on <c>fds</c> messages with <c>SCM_RIGHTS</c>. New → old: hello; old → new: offer (the manifest),
/// then fds until every offered socket is sent, or error; new → old: started. Either side closing ends the handoff.
/// </summary>
internal sealed record HandoffMessage
{
    public const string Protocol = "netstream-handoff/1";

    [JsonPropertyName("hello")]
    public string? Hello { get; init; }

    [JsonPropertyName("pid")]
    public int? ProcessId { get; init; }

    [JsonPropertyName("offer")]
    public List<OfferedSocket>? Offer { get; init; }

    [JsonPropertyName("fds")]
    public int? Descriptors { get; init; }

    [JsonPropertyName("started")]
    public bool? Started { get; init; }

    [JsonPropertyName("error")]
    public string? Error { get; init; }
}

/// <summary>One offered listening socket: its kind (<c>tcp</c>, <c>unix</c>) and bound address (<c>127.0.0.1:8080</c>, <c>[::]:8080</c>, a path).</summary>
internal sealed record OfferedSocket(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("address")] string Address);

internal static class HandoffWire
{
    private const int MaxMessage = 64 * 1024;

    public static void Send(Socket socket, HandoffMessage message, ReadOnlySpan<int> descriptors = default) =>
        ScmRights.Send(socket, JsonSerializer.SerializeToUtf8Bytes(message), descriptors);

    /// <summary>The next message and its descriptors (the caller's to close); null when the peer closed.</summary>
    /// <exception cref="InvalidDataException">The peer sent something that is not a handoff message.</exception>
    public static (HandoffMessage? Message, int[] Descriptors) Receive(Socket socket)
    {
        var buffer = new byte[MaxMessage];
        var (length, descriptors) = ScmRights.Receive(socket, buffer);
        if (length == 0 && descriptors.Length == 0)
        {
            return (null, descriptors);
        }

        try
        {
            return (JsonSerializer.Deserialize<HandoffMessage>(buffer.AsSpan(0, length)), descriptors);
        }
        catch (JsonException e)
        {
            foreach (var descriptor in descriptors)
            {
                Descriptor.Close((ulong)descriptor);
            }

            throw new InvalidDataException($"the peer sent {length} bytes that are not a handoff message ({e.Message})", e);
        }
    }

    /// <summary>A listening socket's kind and address as offered.</summary>
    public static OfferedSocket Describe(System.Net.EndPoint endPoint) => endPoint switch
    {
        UnixDomainSocketEndPoint unix => new OfferedSocket("unix", unix.ToString()),
        _ => new OfferedSocket("tcp", endPoint.ToString() ?? string.Empty),
    };
}
