using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using NetStream.Transport.Internal;

namespace NetStream.Transport;

/// <summary>
/// The seed's <c>llsocket.addrinfo</c> of an accepted connection: what kind of socket it is and who is at each end.
/// Computed only when asked for. A record, so an <c>accepted</c> hook can pass on a changed copy with <c>with</c>.
/// </summary>
/// <param name="Family">The address family: <see cref="AddressFamily.InterNetwork"/>, <see cref="AddressFamily.InterNetworkV6"/> or <see cref="AddressFamily.Unix"/>.</param>
/// <param name="SocketType">The socket type; <see cref="SocketType.Stream"/> for every NetStream connection.</param>
/// <param name="Protocol">The protocol: <see cref="ProtocolType.Tcp"/>, or <see cref="ProtocolType.Unspecified"/> for Unix sockets.</param>
/// <param name="LocalEndPoint">The local end: IP and port, or the Unix socket path.</param>
/// <param name="RemoteEndPoint">The peer: IP and port; for a Unix socket the peer's path, usually empty.</param>
/// <param name="PeerCredentials">For a Unix socket, the peer process's credentials as the kernel recorded them at connect (<c>SO_PEERCRED</c>).</param>
public sealed record AddressInfo(
    AddressFamily Family,
    SocketType SocketType,
    ProtocolType Protocol,
    EndPoint? LocalEndPoint,
    EndPoint? RemoteEndPoint,
    PeerCredentials? PeerCredentials = null)
{
    /// <summary>Nothing known yet: a placeholder until the address info is read.</summary>
    internal static AddressInfo Empty { get; } = new(AddressFamily.Unspecified, SocketType.Unknown, ProtocolType.Unknown, null, null);

    /// <summary>Reads the address info of a connected socket.</summary>
    /// <param name="socket">An accepted or connected stream socket.</param>
    public static AddressInfo FromSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return Of(socket, socket.LocalEndPoint, socket.RemoteEndPoint);
    }

    /// <summary>The address info of an accepted connection: from its socket where it exposes one, else from its endpoints.</summary>
    internal static AddressInfo FromConnection(ConnectionContext connection)
    {
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            // The connection already read its endpoints; reading them again would allocate new ones.
            return Of(socket, connection.LocalEndPoint, connection.RemoteEndPoint);
        }

        var family = (connection.LocalEndPoint ?? connection.RemoteEndPoint)?.AddressFamily ?? AddressFamily.Unspecified;
        var protocol = family is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 ? ProtocolType.Tcp : ProtocolType.Unspecified;
        return new AddressInfo(family, SocketType.Stream, protocol, connection.LocalEndPoint, connection.RemoteEndPoint);
    }

    private static AddressInfo Of(Socket socket, EndPoint? local, EndPoint? remote)
    {
        var family = socket.AddressFamily;
        return new AddressInfo(
            family,
            socket.SocketType,
            socket.ProtocolType,
            local,
            remote,
            family == AddressFamily.Unix ? Transport.PeerCredentials.Read(socket) : null);
    }
}

/// <summary>The credentials of the process at the other end of a Unix socket (<c>SO_PEERCRED</c>).</summary>
/// <param name="ProcessId">The peer's process id.</param>
/// <param name="UserId">The peer's effective user id.</param>
/// <param name="GroupId">The peer's effective group id.</param>
public readonly record struct PeerCredentials(int ProcessId, int UserId, int GroupId)
{
    internal static PeerCredentials? Read(Socket socket)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SocketOptionNames.SolSocket, SocketOptionNames.SoPeerCred, ucred) < ucred.Length)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        return new PeerCredentials(
            BitConverter.ToInt32(ucred[..4]),
            BitConverter.ToInt32(ucred[4..8]),
            BitConverter.ToInt32(ucred[8..]));
    }
}
