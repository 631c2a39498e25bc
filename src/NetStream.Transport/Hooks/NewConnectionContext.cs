using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Hooks;

/// <summary>What a <see cref="INewConnectionHook"/> knows about the endpoint that accepted the socket.</summary>
public sealed class NewConnectionContext
{
    private readonly Func<Socket, ConnectionContext> _createDefault;

    internal NewConnectionContext(EndPoint listenEndPoint, NetStreamTransportOptions options, Func<Socket, ConnectionContext> createDefault)
    {
        ListenEndPoint = listenEndPoint;
        Options = options;
        _createDefault = createDefault;
    }

    /// <summary>The bound address of the listener that accepted the socket.</summary>
    public EndPoint ListenEndPoint { get; }

    /// <summary>The options in force on that endpoint. Treat as read-only.</summary>
    public NetStreamTransportOptions Options { get; }

    /// <summary>Builds NetStream's own connection on <paramref name="socket"/>, already running.</summary>
    /// <param name="socket">The accepted socket, which the connection then owns.</param>
    public ConnectionContext CreateDefault(Socket socket) => _createDefault(socket);
}
