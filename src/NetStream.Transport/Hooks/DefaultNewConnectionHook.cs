using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Hooks;

/// <summary>The default <c>new_connection</c>: NetStream's own pipe-based connection.</summary>
internal sealed class DefaultNewConnectionHook : INewConnectionHook
{
    public static readonly DefaultNewConnectionHook Instance = new();

    public ConnectionContext NewConnection(Socket socket, NewConnectionContext context) => context.CreateDefault(socket);
}
