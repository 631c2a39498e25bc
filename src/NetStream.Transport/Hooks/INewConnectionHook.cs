using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Hooks;

/// <summary>
/// The seed's <c>new_connection(sock)</c>: turns an accepted socket into the connection the server hands on.
/// One implementation is registered in DI; the default builds NetStream's own pipe-based connection.
/// </summary>
/// <remarks>
/// It runs on the accept path, so keep it short and non-blocking. The configured socket options are already
/// applied when it runs; it may change them for this connection. If it throws, the socket is closed, the failure
/// is logged and counted, and accepting goes on.
/// </remarks>
public interface INewConnectionHook
{
    /// <summary>Makes the connection for <paramref name="socket"/>, which the returned connection then owns.</summary>
    /// <param name="socket">The accepted socket.</param>
    /// <param name="context">The endpoint's options and the default connection factory, for decorating it.</param>
    ConnectionContext NewConnection(Socket socket, NewConnectionContext context);
}
