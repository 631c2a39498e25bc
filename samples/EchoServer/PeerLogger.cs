using Microsoft.Extensions.Logging;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace EchoServer;

/// <summary>An example <c>accepted</c> hook: logs each peer, with its process credentials on the Unix socket, and passes it on.</summary>
internal sealed partial class PeerLogger(ILogger<PeerLogger> logger) : IAcceptedHook
{
    public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
    {
        var info = context.AddressInfo;
        if (info.PeerCredentials is { } peer)
        {
            LocalPeer(logger, context.EndpointName, peer.ProcessId, peer.UserId);
        }
        else
        {
            RemotePeer(logger, context.EndpointName, info.RemoteEndPoint?.ToString() ?? "?");
        }

        return ValueTask.FromResult(AcceptedResult.Pass);
    }

    [LoggerMessage(1, LogLevel.Information, "Echoing on {Endpoint} for {RemoteEndPoint}.")]
    private static partial void RemotePeer(ILogger logger, string endpoint, string remoteEndPoint);

    [LoggerMessage(2, LogLevel.Information, "Echoing on {Endpoint} for process {ProcessId} of user {UserId}.")]
    private static partial void LocalPeer(ILogger logger, string endpoint, int processId, int userId);
}
