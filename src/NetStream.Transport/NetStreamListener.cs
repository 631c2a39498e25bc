using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;
using NetStream.Transport.Internal.Engines.Epoll;
using NetStream.Transport.Internal.Engines.Sockets;

namespace NetStream.Transport;

/// <summary>
/// A listening stream socket: the seed's <c>net.stream.Server</c> after <c>listen</c>. Kestrel and Bedrock-style
/// servers use <see cref="AcceptAsync(CancellationToken)"/>; <see cref="AcceptAsync(bool, CancellationToken)"/> is
/// the seed's <c>accept(with_ai)</c> and <see cref="AcceptHandleAsync"/> its <c>acceptfd()</c>.
/// </summary>
/// <remarks>
/// Accept never throws for what happens to one connection or for a passing shortage of resources: transient
/// errors are retried, exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) is logged and retried after a back-off,
/// a failing <c>new_connection</c> costs only its socket. After <see cref="UnbindAsync"/> accept returns
/// <see langword="null"/>. Call the accept methods from one loop at a time.
/// </remarks>
public sealed partial class NetStreamListener : IConnectionListener
{
    /// <summary>new_connection failures logged one by one per second at most, as refusals: a peer can cause them at will.</summary>
    private const int PeerCausedLogsPerSecond = AcceptedHookChain.RefusalLogsPerSecond;

    /// <summary>How often a listener holding back for descriptors counts them again, if none of its own closes.</summary>
    private static readonly TimeSpan DescriptorRecheck = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Holding back is said at most this often: at the limit, a listener holds back at every few connections, each
    /// time only until some close. The metric counts every time.
    /// </summary>
    private static readonly TimeSpan HoldingBackLogInterval = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetStreamTransportOptions _options;
    private readonly INewConnectionHook _newConnection;
    private readonly NewConnectionContext _newConnectionContext;
    private readonly MemoryPool<byte> _pool;
    private readonly IConnectionEngine _engine;
    private readonly IConnectionAcceptor _acceptor;
    private readonly ListenerRegistry? _registry;
    private int _holdingBack;
    private readonly ILogger _logger;
    private readonly NetStreamMetrics _metrics;
    private readonly AcceptErrorPolicy _errors = new();
    private readonly DescriptorHeadroom _descriptors = DescriptorHeadroom.Process;
    private readonly LogBudget _newConnectionLogs;
    private readonly CancellationTokenSource _unbound = new();
    private readonly CancellationToken _unboundToken;
    private readonly string? _unixPath;
    private readonly ulong? _takenDescriptor;
    private readonly MetricTags _endPointTags;
    private long _acceptedCount;
    private int _handedOff;
    private readonly TcpInfoOnClose? _tcpInfoOnClose;
    private NetStreamConnection? _madeByDefault;
    private int _unbindCalled;
    private int _countedNotAccepting;
    private long _holdingBackSaid;

    internal NetStreamListener(
        ListenSocket.Bound bound,
        NetStreamTransportOptions options,
        INewConnectionHook newConnection,
        MemoryPool<byte> pool,
        ILogger logger,
        NetStreamMetrics metrics,
        ListenerRegistry? registry = null)
    {
        _socket = bound.Socket;
        _unixPath = bound.UnixPath;
        _takenDescriptor = bound.TakenDescriptor;
        IsInherited = bound.Inherited;
        EndPoint = bound.EndPoint;
        Backlog = bound.Backlog;
        _options = options;
        _newConnection = newConnection;
        _pool = pool;
        _logger = logger;
        _metrics = metrics;
        _registry = registry;
        _endPointTags = MetricTags.ForEndPoint(EndPoint);
        _tcpInfoOnClose = options.TcpInfoOnClose ? new TcpInfoOnClose(metrics, _endPointTags) : null;
        _engine = options.Engine == NetStreamEngine.Epoll
            ? EpollEngine.Shared(options.EngineThreads, options.IncomingCpu, logger)
            : new SocketsEngine(options);
        _acceptor = _engine.CreateAcceptor(_socket);
        _newConnectionContext = new NewConnectionContext(EndPoint, options, CreateDefaultConnection);
        _newConnectionLogs = new LogBudget(PeerCausedLogsPerSecond, heldBack => Log.NewConnectionFailuresNotLogged(_logger, heldBack, PeerCausedLogsPerSecond));

        // Kept: an accept that fails as the listener is disposed still reads it, and the source is disposed then.
        _unboundToken = _unbound.Token;
    }

    /// <summary>The bound address, with port 0 resolved to the port the kernel chose.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>
    /// The backlog passed to <c>listen(2)</c> (the kernel caps it at <c>SOMAXCONN</c>); <see langword="null"/> for an
    /// inherited socket that was listening already, whose backlog its owner chose.
    /// </summary>
    public int? Backlog { get; }

    /// <summary><c>SO_ACCEPTCONN</c>: whether the socket is listening. <see langword="false"/> once unbound.</summary>
    /// <remarks>
    /// Also <see langword="false"/> while the endpoint is not accepting: every accept has failed for 10 seconds without
    /// one success (logged once, and counted in <c>netstream.listeners.not_accepting</c>); true again at the next success.
    /// </remarks>
    public bool IsListening
    {
        get
        {
            if (Volatile.Read(ref _unbindCalled) != 0 || _errors.IsNotAccepting)
            {
                return false;
            }

            try
            {
                return SocketConfigurator.IsListening(_socket);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                // Unbound meanwhile.
                return false;
            }
        }
    }

    /// <summary>Whether accepting is backing off after failed accepts (no success since the last failure).</summary>
    internal bool IsBackingOff => _errors.IsBackingOff;

    /// <summary>Whether accepting holds back, waiting for file descriptors to be closed (<see cref="NetStreamTransportOptions.DescriptorReserve"/>).</summary>
    internal bool IsHoldingBack => Volatile.Read(ref _holdingBack) != 0;

    /// <summary>The engine this listener's connections run on.</summary>
    internal NetStreamEngine Engine => _options.Engine;

    /// <summary>The listening socket, for reading options. Do not accept on it or close it.</summary>
    public Socket Socket => _socket;

    /// <summary>The options this listener was bound with (its endpoint's own, or the factory's).</summary>
    internal NetStreamTransportOptions Options => _options;

    /// <summary>Accepts the next connection, made by the <c>new_connection</c> hook; <see langword="null"/> once unbound.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default) =>
        (await AcceptCoreAsync(withAddressInfo: false, cancellationToken).ConfigureAwait(false)).Connection;

    /// <summary>The seed's <c>accept(with_ai)</c>: the next connection and, if asked for, its address info.</summary>
    /// <param name="withAddressInfo">Whether to read the address info (family, type, protocol, endpoints, peer credentials).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The connection, or <see langword="null"/> once the listener is unbound.</returns>
    public async ValueTask<AcceptedConnection?> AcceptAsync(bool withAddressInfo, CancellationToken cancellationToken = default)
    {
        var (connection, addressInfo) = await AcceptCoreAsync(withAddressInfo, cancellationToken).ConfigureAwait(false);
        return connection is null ? null : new AcceptedConnection(connection, addressInfo) { ListenerEndPoint = EndPoint };
    }

    /// <summary>
    /// The seed's <c>acceptfd()</c>: the raw accepted socket handle, as the kernel gave it. No hooks run, no options
    /// are applied, no pipes or buffers are made; the caller owns the handle and must dispose it.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The handle, or <see langword="null"/> once the listener is unbound.</returns>
    public async ValueTask<SafeSocketHandle?> AcceptHandleAsync(CancellationToken cancellationToken = default)
    {
        if (await AcceptSocketAsync(cancellationToken).ConfigureAwait(false) is not { } socket)
        {
            return null;
        }

        // The Socket is dropped here: its finalizer must not close the handle the caller now owns.
#pragma warning disable CA1816 // Not a Dispose pattern: handing the handle over.
        GC.SuppressFinalize(socket);
#pragma warning restore CA1816
        return socket.SafeHandle;
    }

    /// <summary>Whether <see cref="UnbindAsync"/> was called.</summary>
    internal bool IsUnbound => Volatile.Read(ref _unbindCalled) != 0;

    /// <summary>
    /// The socket now serves the process it was handed to: this one stops accepting at once (what the kernel completes
    /// from now on waits in the queue for the successor) and closes its descriptor only, leaving a Unix socket's file
    /// where it is. Accepts return <see langword="null"/>, as after an unbind.
    /// </summary>
    internal void HandedOff()
    {
        Volatile.Write(ref _handedOff, 1);
        Unbind();
    }

    /// <summary>Whether the listening socket came from outside (an inherited or passed descriptor), not bound here.</summary>
    internal bool IsInherited { get; }

    /// <summary>Connections this listener accepted and made (for tests, and an <c>AcceptShards</c> group's spread).</summary>
    internal long AcceptedCount => Interlocked.Read(ref _acceptedCount);

    /// <summary>Stops listening: pending and later accepts return <see langword="null"/>; the Unix socket file is removed.</summary>
    /// <param name="cancellationToken">Unused: unbinding does not wait.</param>
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        Unbind();
        return ValueTask.CompletedTask;
    }

    private void Unbind()
    {
        if (Interlocked.Exchange(ref _unbindCalled, 1) == 0)
        {
            _unbound.Cancel();
            _registry?.Remove(this);

            // The file first: once the socket is closed, another process may find the file stale, replace it, and
            // must not lose its own to this removal.
            try
            {
                if (_unixPath is not null && Volatile.Read(ref _handedOff) == 0)
                {
                    UnixSocketFile.Remove(_unixPath);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.UnixSocketFileNotRemoved(_logger, _unixPath!, e);
            }
            finally
            {
                // The engine lets go of the socket first: an epoll loop must stop watching it before it is closed.
                _acceptor.Dispose();
                _socket.Dispose();
                if (_takenDescriptor is { } descriptor)
                {
                    Descriptor.Close(descriptor);
                }
            }

            CountNotAccepting(false);
            Log.Unbound(_logger, EndPoint);
        }
    }

    /// <summary>Unbinds and frees the memory pool's idle blocks; connections already accepted go on working.</summary>
    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        _engine.Release();
        _pool.Dispose();
        _unbound.Dispose();
    }

    // Kestrel's AcceptAsync runs per connection: a tuple, not an AcceptedConnection, keeps it allocation-free.
    private async ValueTask<(ConnectionContext? Connection, AddressInfo? AddressInfo)> AcceptCoreAsync(bool withAddressInfo, CancellationToken cancellationToken)
    {
        while (await AcceptSocketAsync(cancellationToken).ConfigureAwait(false) is { } socket)
        {
            if (NewConnection(socket, withAddressInfo) is ({ } connection, var addressInfo))
            {
                return (connection, addressInfo);
            }
        }

        return (null, null);
    }

    private async ValueTask<Socket?> AcceptSocketAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            // Checked here, not in an async method: every accept passes, and nearly all find room.
            if (!_descriptors.HasRoom(_options.DescriptorReserve, out var open, out var limit)
                && !await HoldBackAsync(open, limit, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            Socket? socket;
            try
            {
                socket = await _acceptor.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Volatile.Read(ref _unbindCalled) != 0 && e is ObjectDisposedException or SocketException or OperationCanceledException)
            {
                return null;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Every failure of one accept is survived, not only the kernel's: the runtime's own (e.g. its socket
                // engine refusing a descriptor it still has registered) must not end the caller's accept loop.
                (var survived, socket) = await SurviveAcceptErrorAsync(e).ConfigureAwait(false);
                if (!survived)
                {
                    return null;
                }
            }

            if (socket is not null)
            {
                Accepted();
                return socket;
            }
        }
    }

    private (ConnectionContext? Connection, AddressInfo? AddressInfo) NewConnection(Socket socket, bool withAddressInfo)
    {
        _madeByDefault = null;
        try
        {
            // Read before new_connection: the hook may hand the socket to a connection type that hides it.
            var addressInfo = withAddressInfo ? AddressInfo.FromSocket(socket) : null;
            SocketConfigurator.Accepted(socket, _options);
            var connection = _newConnection.NewConnection(socket, _newConnectionContext);
            _metrics.Accepted(_endPointTags);
            Interlocked.Increment(ref _acceptedCount);
            return (connection, addressInfo);
        }
        catch (Exception e)
        {
            if (_newConnectionLogs.TryTake())
            {
                Log.NewConnectionFailed(_logger, EndPoint, new Peer(TryGetRemoteEndPoint(socket)), e);
            }

            _metrics.Refused(RefusalReasons.NewConnectionFailed);
            if (_madeByDefault is { } started)
            {
                // The hook made the default connection and then failed: its loops run, and it owns the socket now.
                // Aborting it cannot throw (it tolerates a socket the hook closed), and its end is not awaited here.
                started.Abort(new ConnectionAbortedException("The new_connection hook failed."));
                _ = started.DisposeAsync().AsTask();
            }
            else
            {
                socket.Dispose();
                _descriptors.Closed();
            }

            return (null, null);
        }
        finally
        {
            _madeByDefault = null;
        }
    }

    private NetStreamConnection CreateDefaultConnection(Socket socket)
    {
        var connection = new NetStreamConnection(socket, _engine, _pool, _options, _logger, _tcpInfoOnClose);
        connection.Start();
        _madeByDefault = connection;
        return connection;
    }

    private static EndPoint? TryGetRemoteEndPoint(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // A failed new_connection hook may have closed it already.
            return null;
        }
    }
}
