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

/// <summary>
/// One offered listening socket: its kind (<c>tcp</c>, <c>unix</c>) and bound address (<c>127.0.0.1:8080</c>,
/// <c>[::]:8080</c>, a path), which together name the endpoint it serves; its family and type; and what was set when
/// it was bound. Kind and address are the key the successor takes it by.
/// </summary>
internal sealed record OfferedSocket(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("address")] string Address)
{
    /// <summary><c>inet</c>, <c>inet6</c> or <c>unix</c>.</summary>
    [JsonPropertyName("family")]
    public string? Family { get; init; }

    /// <summary><c>stream</c>: the only type NetStream listens on.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; init; }

    [JsonPropertyName("bound")]
    public BindSettings? Bound { get; init; }

    /// <summary>Whether <paramref name="other"/> names the same endpoint.</summary>
    public bool SameEndpoint(OfferedSocket other) => Kind == other.Kind && Address == other.Address;
}

/// <summary>
/// What a listening socket was set up with: its backlog (null when an inherited socket kept its owner's), and for TCP
/// <c>SO_REUSEPORT</c> (as the socket reports it), <c>TCP_DEFER_ACCEPT</c> seconds and the <c>TCP_FASTOPEN</c> queue (0: off).
/// </summary>
internal sealed record BindSettings(
    [property: JsonPropertyName("backlog")] int? Backlog,
    [property: JsonPropertyName("reusePort")] bool? ReusePort = null,
    [property: JsonPropertyName("deferAccept")] int? DeferAccept = null,
    [property: JsonPropertyName("fastOpen")] int? FastOpen = null);

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

    /// <summary>A listener's socket as offered to the successor: endpoint, family, type and what it was bound with.</summary>
    public static OfferedSocket Offer(NetStreamListener listener)
    {
        var socket = listener.Socket;
        var tcp = socket.AddressFamily != AddressFamily.Unix;
        var options = listener.Options;
        return Describe(listener.EndPoint) with
        {
            Family = Family(socket.AddressFamily),
            Type = "stream",
            Bound = tcp
                ? new BindSettings(
                    listener.Backlog,
                    SocketConfigurator.GetRawInt(socket, SocketOptionNames.SolSocket, SocketOptionNames.SoReusePort) != 0,
                    options.DeferAccept is { } defer ? SocketConfigurator.DeferAcceptSeconds(defer) : 0,
                    options.FastOpen ?? 0)
                : new BindSettings(listener.Backlog),
        };
    }

    public static string Family(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => "inet",
        AddressFamily.InterNetworkV6 => "inet6",
        AddressFamily.Unix => "unix",
        _ => family.ToString(),
    };
}
