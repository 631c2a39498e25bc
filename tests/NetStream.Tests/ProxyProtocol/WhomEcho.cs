using System.Text;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>The hosted pipeline of the PROXY protocol tests: says whom it serves (its remote endpoint, a line), then echoes.</summary>
internal static class WhomEcho
{
    public static void Use(IConnectionBuilder server) => server.Run(async connection =>
    {
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"{connection.RemoteEndPoint}\n"));
        await TestEcho.EchoAsync(connection);
    });
}
