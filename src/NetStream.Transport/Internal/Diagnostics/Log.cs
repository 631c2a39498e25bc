using System.Net;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal;

/// <summary>Every log event of the transport, with fixed ids. Retired ids stay reserved.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "NetStream ({Engine}) listening on {EndPoint}, backlog {Backlog}.")]
    public static partial void Listening(ILogger logger, NetStreamEngine engine, EndPoint endPoint, string backlog);

    [LoggerMessage(2, LogLevel.Debug, "NetStream stopped listening on {EndPoint}.")]
    public static partial void Unbound(ILogger logger, EndPoint endPoint);

    [LoggerMessage(3, LogLevel.Debug, "Accept on {EndPoint} failed with {Error}; retrying at once.")]
    public static partial void AcceptRetried(ILogger logger, EndPoint endPoint, string error);

    [LoggerMessage(4, LogLevel.Warning, "Accept on {EndPoint} failed with {Error}: out of resources; backing off {DelayMs} ms ({Suppressed} more since the last warning).")]
    public static partial void AcceptBackoff(ILogger logger, EndPoint endPoint, string error, int delayMs, long suppressed);

    [LoggerMessage(5, LogLevel.Error, "Accept on {EndPoint} failed unexpectedly with {Error}; backing off {DelayMs} ms and accepting on ({Suppressed} more since the last time this was logged).")]
    public static partial void AcceptFailed(ILogger logger, EndPoint endPoint, string error, int delayMs, long suppressed, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "new_connection failed on {EndPoint} for {Peer}; the socket was closed, accepting goes on.")]
    public static partial void NewConnectionFailed(ILogger logger, EndPoint endPoint, Peer peer, Exception exception);

    [LoggerMessage(7, LogLevel.Debug, "Connection {ConnectionId} aborted: {Reason}")]
    public static partial void ConnectionAborted(ILogger logger, string connectionId, string reason);

    [LoggerMessage(8, LogLevel.Debug, "Connection {ConnectionId}: the peer finished sending (FIN).")]
    public static partial void ConnectionFin(ILogger logger, string connectionId);

    [LoggerMessage(9, LogLevel.Debug, "Connection {ConnectionId} was reset by the peer.")]
    public static partial void ConnectionReset(ILogger logger, string connectionId);

    [LoggerMessage(10, LogLevel.Debug, "Connection {ConnectionId} failed.")]
    public static partial void ConnectionError(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(11, LogLevel.Information, "Replaced the stale Unix socket file {Path}: nobody was accepting on it.")]
    public static partial void StaleUnixSocketReplaced(ILogger logger, string path);

    [LoggerMessage(12, LogLevel.Information, "Connection {ConnectionId} from {Peer} refused by the accepted hook {Hook}: {Reason}.")]
    public static partial void ConnectionRefused(ILogger logger, string connectionId, Peer peer, string hook, string reason);

    [LoggerMessage(13, LogLevel.Warning, "The accepted hook {Hook} failed on connection {ConnectionId} from {Peer}; only that connection was refused.")]
    public static partial void HookFailed(ILogger logger, string hook, string connectionId, Peer peer, Exception exception);

    [LoggerMessage(14, LogLevel.Warning, "The accepted hook {Hook} on connection {ConnectionId} from {Peer} passed the chain's time limit of {TimeoutMs} ms; the connection was refused.")]
    public static partial void HookTimedOut(ILogger logger, string hook, string connectionId, Peer peer, double timeoutMs);

    [LoggerMessage(15, LogLevel.Warning, "A close callback of an accepted hook failed on connection {ConnectionId}; the other callbacks ran.")]
    public static partial void HookCallbackFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(16, LogLevel.Debug, "Connection {ConnectionId} closed while the accepted hook {Hook} ran.")]
    public static partial void ClosedDuringHooks(ILogger logger, string connectionId, string hook);

    [LoggerMessage(17, LogLevel.Warning, "Disposing the connection an accepted hook put in place of connection {ConnectionId} failed.")]
    public static partial void ReplacementDisposeFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(18, LogLevel.Information, "{Count} more connections were refused by accepted hooks and not logged one by one (at most {PerSecond} a second are); netstream.connections.refused counts them all.")]
    public static partial void RefusalsNotLogged(ILogger logger, long count, int perSecond);

    [LoggerMessage(19, LogLevel.Information, "TCP-only options not set on the Unix socket endpoint {EndPoint}: {Options}.")]
    public static partial void TcpOnlyOptionsIgnored(ILogger logger, string options, EndPoint endPoint);

    [LoggerMessage(20, LogLevel.Warning, "Could not remove the Unix socket file {Path} at unbind.")]
    public static partial void UnixSocketFileNotRemoved(ILogger logger, string path, Exception exception);

    [LoggerMessage(21, LogLevel.Error, "A ConnectionClosed callback of connection {ConnectionId} failed; the other callbacks ran.")]
    public static partial void ConnectionClosedCallbackFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(22, LogLevel.Warning, "Closing connection {ConnectionId}, refused by an accepted hook, failed.")]
    public static partial void RefusalCloseFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(23, LogLevel.Critical, "NetStream on {EndPoint} is not accepting connections: every accept for {Seconds} s failed, the last with {Error}. It keeps retrying, backing off, and says so when one succeeds.")]
    public static partial void NotAccepting(ILogger logger, EndPoint endPoint, double seconds, string error);

    [LoggerMessage(24, LogLevel.Information, "NetStream on {EndPoint} accepts connections again, after {Seconds:0.0} s of failures.")]
    public static partial void AcceptingAgain(ILogger logger, EndPoint endPoint, double seconds);

    [LoggerMessage(25, LogLevel.Warning, "NetStream on {EndPoint} holds back accepting: {Open} of {Limit} file descriptors are open and another connection would leave fewer than DescriptorReserve = {Reserve} free for the runtime. The kernel's backlog holds new peers until descriptors are closed (said at most every 10 s).")]
    public static partial void HoldingBack(ILogger logger, EndPoint endPoint, int open, long limit, int reserve);

    [LoggerMessage(26, LogLevel.Information, "NetStream on {EndPoint} accepts again: {Open} file descriptors open, after holding back for {Seconds:0.000} s.")]
    public static partial void HoldingBackEnded(ILogger logger, EndPoint endPoint, int open, double seconds);

    [LoggerMessage(27, LogLevel.Information, "{Count} more new_connection failures were not logged one by one (at most {PerSecond} a second are); netstream.connections.refused counts them all.")]
    public static partial void NewConnectionFailuresNotLogged(ILogger logger, long count, int perSecond);

    [LoggerMessage(28, LogLevel.Information, "NetStream's epoll engine started {Threads} loop threads.")]
    public static partial void EngineStarted(ILogger logger, int threads);

    [LoggerMessage(29, LogLevel.Error, "An epoll loop caught a failure of connection code; the loop goes on.")]
    public static partial void EngineCallbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(30, LogLevel.Critical, "An epoll loop's epoll_wait failed with {Error}; retrying every 100 ms.")]
    public static partial void EngineWaitFailed(ILogger logger, string error);

    [LoggerMessage(31, LogLevel.Information, "NetStream's epoll engine started {Threads} loop threads pinned to CPUs {Cpus}: each connection is served on the loop of the CPU that received its packets (IncomingCpu).")]
    public static partial void EnginePinned(ILogger logger, int threads, string cpus);

    [LoggerMessage(32, LogLevel.Warning, "An epoll loop could not be pinned to CPU {Cpu} ({Error}); it runs unpinned, and IncomingCpu still steers that CPU's connections to it.")]
    public static partial void LoopNotPinned(ILogger logger, int cpu, string error);

    [LoggerMessage(33, LogLevel.Information, "Listener handoff: no process is offering its sockets at {Path}; binding as usual.")]
    public static partial void HandoffNoPeer(ILogger logger, string path);

    [LoggerMessage(34, LogLevel.Information, "Listener handoff: took {Count} listening sockets from the process at {Path}.")]
    public static partial void HandoffReceived(ILogger logger, int count, string path);

    [LoggerMessage(35, LogLevel.Warning, "Listener handoff from {Path} refused: {Reason}. Binding as usual; the old process keeps serving.")]
    public static partial void HandoffRefused(ILogger logger, string path, string reason);

    [LoggerMessage(36, LogLevel.Information, "Listener handoff: the old process offered {Address}, which no endpoint of this one binds; closed.")]
    public static partial void HandoffSocketUnused(ILogger logger, string address);

    [LoggerMessage(37, LogLevel.Information, "Listener handoff: offering this process's listening sockets to its successor at {Path}.")]
    public static partial void HandoffListening(ILogger logger, string path);

    [LoggerMessage(38, LogLevel.Warning, "Listener handoff: refused a peer with uid {PeerUid} (pid {PeerPid}); only uid {Uid} or root may take the sockets.")]
    public static partial void HandoffPeerRefused(ILogger logger, int peerUid, int peerPid, int uid);

    [LoggerMessage(39, LogLevel.Warning, "Listener handoff: process {Pid} asked while another handoff is under way; told it is busy.")]
    public static partial void HandoffBusy(ILogger logger, int pid);

    [LoggerMessage(40, LogLevel.Information, "Listener handoff: sent {Count} listening sockets to process {Pid}; waiting for it to start.")]
    public static partial void HandoffOffered(ILogger logger, int count, int pid);

    [LoggerMessage(41, LogLevel.Information, "Listener handoff: process {Pid} started with the {Count} sockets; this process stops accepting and drains.")]
    public static partial void HandoffDone(ILogger logger, int count, int pid);

    [LoggerMessage(42, LogLevel.Warning, "Listener handoff to process {Pid} did not complete: {Reason}. This process keeps serving.")]
    public static partial void HandoffAborted(ILogger logger, int pid, string reason);

    [LoggerMessage(43, LogLevel.Information, "NetStream takes the listening socket {EndPoint} handed over by the old process.")]
    public static partial void HandoffSocketTaken(ILogger logger, System.Net.EndPoint endPoint);

    [LoggerMessage(44, LogLevel.Information, "Listener handoff: {Address} was set up with {Option} = {Old} by the old process; set to this process's {New}.")]
    public static partial void HandoffSettingApplied(ILogger logger, string address, string option, string old, string @new);

    [LoggerMessage(45, LogLevel.Warning, "Listener handoff: {Address} was bound with {Option} = {Old}, which a bound socket cannot change; this process's {New} takes effect when the socket is bound anew (a restart without the handoff).")]
    public static partial void HandoffSettingKept(ILogger logger, string address, string option, bool old, bool @new);
}
