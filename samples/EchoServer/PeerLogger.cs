using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EchoServer;

/// <summary>An example step in front of the handler, in the place of the seed's <c>accepted</c>: logs each peer and passes the connection on.</summary>
internal static partial class PeerLogger
{
    public static IConnectionBuilder UsePeerLogger(this IConnectionBuilder server)
    {
        var logger = server.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger("EchoServer.Peers");
        return server.Use(next => connection =>
        {
            Accepted(logger, connection.RemoteEndPoint, connection.LocalEndPoint);
            return next(connection);
        });
    }

    [LoggerMessage(1, LogLevel.Information, "Echoing for {RemoteEndPoint} on {LocalEndPoint}.")]
    private static partial void Accepted(ILogger logger, EndPoint? remoteEndPoint, EndPoint? localEndPoint);
}
