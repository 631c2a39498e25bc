using System.Net;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport;

/// <summary>What the seed's <c>accept(with_ai)</c> returns: the connection and, when asked for, its address info.</summary>
/// <param name="Connection">The accepted connection, made by the <c>new_connection</c> hook.</param>
/// <param name="AddressInfo">The address info; <see langword="null"/> unless it was asked for.</param>
public sealed record AcceptedConnection(ConnectionContext Connection, AddressInfo? AddressInfo)
{
    /// <summary>The listener's own address (a wildcard one stays so): the key of the per-endpoint limit.</summary>
    internal EndPoint? ListenerEndPoint { get; init; }
}
