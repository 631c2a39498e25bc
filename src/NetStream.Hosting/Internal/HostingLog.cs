using System.Net;
using Microsoft.Extensions.Logging;
using NetStream.Transport.Internal;

namespace NetStream.Hosting.Internal;

/// <summary>Every log event of the hosted server, with fixed ids (the transport's use 1-99).</summary>
internal static partial class HostingLog
{
    [LoggerMessage(101, LogLevel.Information, "NetStream endpoint {Name} listening on {EndPoint}.")]
    public static partial void EndpointStarted(ILogger logger, string name, EndPoint endPoint);

    [LoggerMessage(102, LogLevel.Debug, "Connection {ConnectionId} accepted on {Name} from {Peer}.")]
    public static partial void ConnectionAccepted(ILogger logger, string connectionId, string name, Peer peer);

    [LoggerMessage(103, LogLevel.Debug, "Connection {ConnectionId} on {Name} closed.")]
    public static partial void ConnectionClosed(ILogger logger, string connectionId, string name);

    [LoggerMessage(104, LogLevel.Warning, "The handler of connection {ConnectionId} on {Name} failed; only that connection was closed.")]
    public static partial void HandlerFailed(ILogger logger, string connectionId, string name, Exception exception);

    [LoggerMessage(105, LogLevel.Information, "Stopping NetStream: {Count} connections still running, waiting up to {TimeoutMs} ms.")]
    public static partial void Draining(ILogger logger, int count, double timeoutMs);

    [LoggerMessage(106, LogLevel.Warning, "NetStream shutdown timeout reached: aborting {Count} connections.")]
    public static partial void AbortingOnShutdown(ILogger logger, int count);

    [LoggerMessage(107, LogLevel.Debug, "NetStream endpoint {Name} takes the socket systemd passed as descriptor {Descriptor}.")]
    public static partial void SystemdSocketTaken(ILogger logger, string name, ulong descriptor);

    [LoggerMessage(108, LogLevel.Critical, "NetStream endpoint {Name} stopped accepting: its listener failed.")]
    public static partial void AcceptLoopFailed(ILogger logger, string name, Exception exception);

    [LoggerMessage(109, LogLevel.Warning, "Disposing connection {ConnectionId} on {Name} failed.")]
    public static partial void DisposeFailed(ILogger logger, string connectionId, string name, Exception exception);

    [LoggerMessage(110, LogLevel.Debug, "The handler of connection {ConnectionId} on {Name} ended with the shutdown's abort.")]
    public static partial void HandlerAbortedOnShutdown(ILogger logger, string connectionId, string name);

    [LoggerMessage(111, LogLevel.Debug, "Connection {ConnectionId} on {Name} ended under its handler: {Reason}")]
    public static partial void ConnectionEndedUnderHandler(ILogger logger, string connectionId, string name, string reason);

    [LoggerMessage(112, LogLevel.Warning, "{Count} more handler failures were not logged one by one (at most {PerSecond} a second are); netstream.handler.errors counts them all.")]
    public static partial void HandlerFailuresNotLogged(ILogger logger, long count, int perSecond);

    [LoggerMessage(113, LogLevel.Debug, "Connection {ConnectionId} on {Name} closed: {Key} ({Seconds} s) passed.")]
    public static partial void ConnectionTimedOut(ILogger logger, string connectionId, string name, string key, double seconds);

    [LoggerMessage(114, LogLevel.Warning, "Endpoint {Name}: FirstByteTimeout and IdleTimeout do not apply to its connections of type {Type}, which do not report their bytes (a new_connection hook's own type).")]
    public static partial void TimeoutsNotApplied(ILogger logger, string name, string type);

    [LoggerMessage(115, LogLevel.Warning, "systemd notification to NOTIFY_SOCKET {Path} failed: {Error}.")]
    public static partial void SystemdNotifyFailed(ILogger logger, string path, string error);

    [LoggerMessage(116, LogLevel.Information, "NetStream endpoint {Name}: its listening socket is in systemd's file descriptor store (FDNAME={Name}); a restart passes it to the next process.")]
    public static partial void SystemdStored(ILogger logger, string name);

    [LoggerMessage(117, LogLevel.Warning, "systemd's file descriptor store holds {Size} descriptors (FileDescriptorStoreMax=): endpoint {Name} and the rest are not stored, and a restart rebinds them.")]
    public static partial void SystemdStoreFull(ILogger logger, int size, string name);

    [LoggerMessage(118, LogLevel.Information, "NetStream endpoint {Name} takes its listening socket back from systemd (descriptor {Descriptor}, FDNAME={Name}): no connection waiting in its backlog is lost.")]
    public static partial void StoredSocketTaken(ILogger logger, string name, int descriptor);

    [LoggerMessage(119, LogLevel.Warning, "NetStream endpoint {Name}: systemd passed a socket named {Name} bound to {Passed}, not to {Wanted} as the endpoint's Url now says; it binds anew, and that socket leaves the store.")]
    public static partial void StoredSocketMismatch(ILogger logger, string name, string passed, string wanted);

    [LoggerMessage(120, LogLevel.Information, "systemd passed a socket named {Name} that no endpoint binds any more: removed from its store (FDSTOREREMOVE) and closed.")]
    public static partial void StoredSocketRemoved(ILogger logger, string name);
}
