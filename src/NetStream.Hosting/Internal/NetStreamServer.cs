using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Net;
using Microsoft.Extensions.Options;
using NetStream.Transport;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;

namespace NetStream.Hosting.Internal;

/// <summary>
/// The hosted server: binds every configured endpoint, runs one accept loop each, and runs every connection
/// through the <c>accepted</c> hooks and then the connection pipeline, on its own task. Stop: unbind, drain for the shutdown timeout, abort the rest.
/// </summary>
internal sealed partial class NetStreamServer(
    NetStreamTransportFactory factory,
    IOptions<NetStreamTransportOptions> transportOptions,
    IOptions<NetStreamServerOptions> serverOptions,
    IOptions<HostOptions> hostOptions,
    IConfiguration configuration,
    ConnectionDelegate application,
    AcceptedHookChain hooks,
    ILogger<NetStreamServer> logger,
    NetStreamMetrics metrics) : IHostedService, IDisposable
{
    /// <summary>The most a stop waits for aborted connections to end, after the drain time.</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

    /// <summary>Handler failures logged one by one per second at most; the rest are counted in one line.</summary>
    private const int HandlerFailureLogsPerSecond = 20;

    private readonly List<Endpoint> _endpoints = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<ConnectionContext, Task> _connections = new();
    private readonly LogBudget _handlerFailureLogs = new(
        HandlerFailureLogsPerSecond, heldBack => HostingLog.HandlerFailuresNotLogged(logger, heldBack, HandlerFailureLogsPerSecond));
    private SemaphoreSlim? _totalSlots;
    private volatile bool _abortingOnShutdown;

    /// <summary>The endpoints bound by <see cref="StartAsync"/>, port 0 resolved (for tests).</summary>
    internal IReadOnlyList<System.Net.EndPoint> BoundEndPoints => _endpoints.Select(e => e.Listener.EndPoint).ToList();

    /// <summary>The listeners bound by <see cref="StartAsync"/> (for tests).</summary>
    internal IReadOnlyList<NetStreamListener> BoundListeners => _endpoints.Select(e => e.Listener).ToList();

    /// <summary>Passed sockets no endpoint took, by descriptor and name (see <see cref="StartAsync"/>).</summary>
    internal IReadOnlyList<(int Descriptor, string Name)> StaleStored { get; private set; } = [];

    /// <summary>
    /// The endpoints whose listening socket systemd's store can keep across a restart: TCP, bound by this process (not
    /// passed by systemd or inherited), one socket (not an <c>AcceptShards</c> group); by endpoint name.
    /// </summary>
    internal IEnumerable<(string Name, NetStreamListener Listener)> StorableListeners => _endpoints
        .Where(e => e.Accepting is NetStreamListener { EndPoint: IPEndPoint } && !e.Listener.IsInherited)
        .Select(e => (e.Name, e.Listener));

    /// <summary>Every listening socket's listener of every endpoint: an <c>AcceptShards</c> group's all (for tests).</summary>
    internal IReadOnlyList<NetStreamListener> AllListeners =>
        _endpoints.SelectMany(e => e.Accepting is ShardGroup group ? group.Shards : [e.Listener]).ToList();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = serverOptions.Value;
        if (options.Endpoints.Count == 0)
        {
            throw new InvalidOperationException("NetStream:Endpoints names no endpoint: add one, e.g. NetStream:Endpoints:Main:Url = tcp://127.0.0.1:7007.");
        }

        if (options.MaxConnections is { } total)
        {
            _totalSlots = new SemaphoreSlim(total);
        }

        var systemd = SystemdSockets.FromEnvironment();
        var systemdUsers = new Dictionary<ulong, string>();
        try
        {
            foreach (var (name, endpointOptions) in options.Endpoints)
            {
                var endpoint = await BindAsync(name, endpointOptions, systemd, systemdUsers, cancellationToken).ConfigureAwait(false);
                _endpoints.Add(endpoint);
                HostingLog.EndpointStarted(logger, name, endpoint.Listener.EndPoint);
            }
        }
        catch
        {
            await StopListenersAsync().ConfigureAwait(false);
            throw;
        }

        // Sockets systemd passed that no endpoint took: with a store, ones a process before stored for endpoints that are
        // gone or moved. Removed from the store once the host has started (SystemdNotify), or they would listen on.
        StaleStored = [.. systemd.Passed.Where(p => !systemdUsers.ContainsKey((ulong)p.Descriptor) && p.Name is not null)
            .Select(p => (p.Descriptor, p.Name!))];

        if (systemdUsers.Count > 0)
        {
            // Taken: a child process must not believe systemd passed them to it.
            SystemdSockets.ClearEnvironment();
        }

        StartWatchdog();
        foreach (var endpoint in _endpoints)
        {
            endpoint.AcceptLoop = Task.Run(() => AcceptLoopAsync(endpoint), CancellationToken.None);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopListenersAsync().ConfigureAwait(false);

        var running = _connections.Values.ToArray();
        var (drainTime, abortGrace) = ShutdownBudget(serverOptions.Value.ShutdownTimeout, hostOptions.Value.ShutdownTimeout);
        HostingLog.Draining(logger, running.Length, drainTime.TotalMilliseconds);
        var drained = Task.WhenAll(running);
        if (await Task.WhenAny(drained, Task.Delay(drainTime, cancellationToken)).ConfigureAwait(false) != drained)
        {
            HostingLog.AbortingOnShutdown(logger, _connections.Count);
            _abortingOnShutdown = true;
            foreach (var connection in _connections.Keys)
            {
                connection.Abort(new ConnectionAbortedException("The server is shutting down."));
            }

            await Task.WhenAny(drained, Task.Delay(abortGrace, CancellationToken.None)).ConfigureAwait(false);
        }

        await _watchStopped.CancelAsync().ConfigureAwait(false);
        await _watchdog.ConfigureAwait(false);
        foreach (var endpoint in _endpoints)
        {
            await endpoint.Accepting.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// How long a stop drains, and how long it then waits for aborted connections: within the host's own shutdown
    /// timeout, which ends the wait for every hosted service.
    /// </summary>
    internal static (TimeSpan Drain, TimeSpan AbortGrace) ShutdownBudget(TimeSpan shutdownTimeout, TimeSpan hostShutdownTimeout)
    {
        if (hostShutdownTimeout < TimeSpan.Zero)
        {
            // The host waits for ever (Timeout.InfiniteTimeSpan).
            return (shutdownTimeout, AbortGrace);
        }

        var grace = TimeSpan.FromTicks(Math.Min(AbortGrace.Ticks, hostShutdownTimeout.Ticks / 5));
        var drain = hostShutdownTimeout - grace;
        return (shutdownTimeout < drain ? shutdownTimeout : drain, grace);
    }

    public void Dispose()
    {
        // The slot semaphores are not disposed: a connection that outlives the stop still gives its slots back, and
        // a SemaphoreSlim holds nothing to free unless its wait handle was asked for.
        _stopping.Dispose();
        _watchStopped.Dispose();
    }

    private async Task StopListenersAsync()
    {
        // Wakes accept loops parked at a connection limit as well as those inside accept.
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var endpoint in _endpoints)
        {
            await endpoint.Accepting.UnbindAsync().ConfigureAwait(false);
        }

        await Task.WhenAll(_endpoints.Select(e => e.AcceptLoop)).ConfigureAwait(false);
    }

    private async Task<Endpoint> BindAsync(
        string name,
        NetStreamEndpointOptions endpointOptions,
        SystemdSockets systemd,
        Dictionary<ulong, string> systemdUsers,
        CancellationToken cancellationToken)
    {
        var key = $"{NetStreamTransportOptions.SectionName}:Endpoints:{name}";
        if (string.IsNullOrWhiteSpace(endpointOptions.Url))
        {
            throw new InvalidOperationException($"{key}:Url is missing: say where endpoint {name} listens (tcp://host:port, unix:/path, fd:N or systemd:[index|name]).");
        }

        System.Net.EndPoint endPoint;
        try
        {
            endPoint = EndpointUrl.Parse(endpointOptions.Url, systemd);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
        {
            // ArgumentException: a Unix socket path longer than the kernel takes.
            throw new InvalidOperationException($"{key}:Url = '{endpointOptions.Url}': {e.Message}", e);
        }

        if (endPoint is IPEndPoint { Port: > 0 } wanted && StoredSocketFor(name, wanted, systemd, systemdUsers) is { } stored)
        {
            // A restart under systemd: this endpoint's socket, put into systemd's store by the process before.
            systemdUsers.Add((ulong)stored, name);
            HostingLog.StoredSocketTaken(logger, name, stored);
            endPoint = new TakenFileHandleEndPoint((ulong)stored);
        }

        if (configuration.GetSection($"{key}:Hooks").Exists())
        {
            throw new InvalidOperationException($"{key}:Hooks: the accepted hooks and their options apply to every endpoint; set them under NetStream:Hooks.");
        }

        if (endpointOptions.Url.StartsWith("systemd:", StringComparison.Ordinal) && endPoint is FileHandleEndPoint passed)
        {
            // Two listeners on one descriptor would close it twice.
            if (!systemdUsers.TryAdd(passed.FileHandle, name))
            {
                throw new InvalidOperationException($"{key}:Url = '{endpointOptions.Url}': endpoint {systemdUsers[passed.FileHandle]} already uses the socket systemd passed as descriptor {passed.FileHandle}.");
            }

            HostingLog.SystemdSocketTaken(logger, name, passed.FileHandle);
        }

        // The endpoint inherits the transport options and overrides what its own section sets.
        var options = transportOptions.Value.Clone();
        if (configuration.GetSection($"{key}:ProxyProtocol:TrustedProxies").Exists())
        {
            // The binder adds to a list: an endpoint's own trusted proxies replace the server's, never widen them.
            options.ProxyProtocol.TrustedProxies.Clear();
        }

        SectionBinder.Bind(configuration.GetSection(key), options);
        var errors = NetStreamTransportOptionsValidator.Validate(options, key);
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(name, typeof(NetStreamTransportOptions), errors);
        }

        try
        {
            var listener = factory.BindGroup(endPoint, options);
            var server = serverOptions.Value;
            return new Endpoint(
                name,
                listener,
                endpointOptions.MaxConnections is { } max ? new SemaphoreSlim(max) : null,
                TimeoutOf(endpointOptions.FirstByteTimeout, server.FirstByteTimeout),
                TimeoutOf(endpointOptions.IdleTimeout, server.IdleTimeout))
            {
                ProxyProtocol = AcceptedHookChain.ReceiverFor(options.ProxyProtocol),
            };
        }
        catch (AddressInUseException e)
        {
            throw new AddressInUseException($"{key}:Url = '{endpointOptions.Url}': {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or NotSupportedException or ArgumentException)
        {
            // The transport says what failed; the key says which endpoint it was.
            throw new InvalidOperationException($"{key}:Url = '{endpointOptions.Url}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The passed socket, not yet taken, bound where the endpoint binds: the one named after the endpoint, else any (an
    /// endpoint renamed since its socket was stored). A socket of the endpoint's name bound elsewhere is said and left.
    /// </summary>
    private int? StoredSocketFor(string name, IPEndPoint wanted, SystemdSockets systemd, Dictionary<ulong, string> systemdUsers)
    {
        var free = systemd.Passed.Where(p => !systemdUsers.ContainsKey((ulong)p.Descriptor)).ToList();
        foreach (var (descriptor, passedName) in free.OrderByDescending(p => p.Name == name))
        {
            var at = LocalEndPointOf(descriptor);
            if (wanted.Equals(at))
            {
                return descriptor;
            }

            if (passedName == name)
            {
                HostingLog.StoredSocketMismatch(logger, name, at?.ToString() ?? "an unknown address", wanted.ToString());
            }
        }

        return null;
    }

    /// <summary>The address a passed socket is bound to, read without taking the descriptor.</summary>
    private static System.Net.EndPoint? LocalEndPointOf(int descriptor)
    {
        try
        {
            using var socket = new System.Net.Sockets.Socket(new System.Net.Sockets.SafeSocketHandle(descriptor, ownsHandle: false));
            return socket.LocalEndPoint;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    private async Task AcceptLoopAsync(Endpoint endpoint)
    {
        while (await WaitForRoomAsync(endpoint).ConfigureAwait(false))
        {
            ConnectionContext? connection;
            try
            {
                connection = await endpoint.Accepting.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // The listener turns every error of one connection or of a passing shortage into a retry: this is a
                // bug, and the endpoint is lost. Said loudly, and unbound, so that peers are refused rather than left
                // waiting in the backlog; the stop that follows still drains and releases.
                HostingLog.AcceptLoopFailed(logger, endpoint.Name, e);
                try
                {
                    await endpoint.Accepting.UnbindAsync().ConfigureAwait(false);
                }
                catch (Exception unbind)
                {
                    HostingLog.AcceptLoopFailed(logger, endpoint.Name, unbind);
                }

                connection = null;
            }

            if (connection is null)
            {
                endpoint.Slots?.Release();
                return;
            }

            if (!await TakeTotalSlotAsync().ConfigureAwait(false))
            {
                // Stopping while the connection waited for a slot: it was never served.
                endpoint.Slots?.Release();
                await CloseUnservedAsync(endpoint, connection).ConfigureAwait(false);
                return;
            }

            // Registered before it runs, so a connection that ends at once is never left behind in the table.
            var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _connections[connection] = RunConnectionAsync(endpoint, connection, registered.Task);
            registered.SetResult();
        }
    }

    private async Task RunConnectionAsync(Endpoint endpoint, ConnectionContext connection, Task registered)
    {
        // Continues on the thread pool: a slow handler never delays the next accept.
        await registered.ConfigureAwait(false);
        var started = Stopwatch.GetTimestamp();
        metrics.ConnectionStarted(endpoint.Tags);
        HostingLog.ConnectionAccepted(logger, connection.ConnectionId, endpoint.Name, new Peer(connection.RemoteEndPoint));
        var watched = Watch(endpoint, connection);
        try
        {
            await hooks.RunAsync(connection, application, endpoint.Name, endpoint.ProxyProtocol).ConfigureAwait(false);
        }
        catch (Exception e) when (_abortingOnShutdown && e is ConnectionAbortedException or OperationCanceledException)
        {
            // What the stop asked for, not a failure of the handler's.
            HostingLog.HandlerAbortedOnShutdown(logger, connection.ConnectionId, endpoint.Name);
        }
        catch (Exception e) when (e is ConnectionResetException or ConnectionAbortedException
            || (e is OperationCanceledException && connection.ConnectionClosed.IsCancellationRequested))
        {
            // The peer reset the connection, or it was ended under the handler (a timeout, the application's abort; a
            // handler that waits with ConnectionClosed sees that as a cancellation): the peer's doing or a decision
            // already logged, not the handler's failure. Debug, as Kestrel logs a client gone; a peer can cause these
            // at will.
            var error = e is ConnectionResetException ? "connection_reset" : "connection_aborted";
            HostingLog.ConnectionEndedUnderHandler(logger, connection.ConnectionId, endpoint.Name, e.Message);
            metrics.HandlerError(endpoint.Tags, error);
            connection.Abort(new ConnectionAbortedException(e.Message, e));
        }
        catch (Exception e)
        {
            metrics.HandlerError(endpoint.Tags, "exception");
            if (_handlerFailureLogs.TryTake())
            {
                HostingLog.HandlerFailed(logger, connection.ConnectionId, endpoint.Name, e);
            }

            connection.Abort(new ConnectionAbortedException("The connection handler failed.", e));
        }
        finally
        {
            if (watched)
            {
                _watched.TryRemove(connection, out _);
            }

            try
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // A connection type of the application's (a new_connection hook's) failed: it keeps no slot.
                HostingLog.DisposeFailed(logger, connection.ConnectionId, endpoint.Name, e);
            }

            metrics.ConnectionEnded(endpoint.Tags, started);
            HostingLog.ConnectionClosed(logger, connection.ConnectionId, endpoint.Name);
            _connections.TryRemove(connection, out _);
            ReleaseSlots(endpoint);
        }
    }

    private sealed class Endpoint(string name, IConnectionListener accepting, SemaphoreSlim? slots, TimeSpan firstByteTimeout, TimeSpan idleTimeout)
    {
        /// <summary>1 once the endpoint said that a connection type's timeouts cannot be applied.</summary>
        public int UnwatchableSaid;

        public string Name { get; } = name;

        /// <summary>What the accept loop takes connections from: the listener, or the group of its <c>AcceptShards</c>.</summary>
        public IConnectionListener Accepting { get; } = accepting;

        /// <summary>The endpoint's listener (of a group, the first).</summary>
        public NetStreamListener Listener { get; } = accepting as NetStreamListener ?? ((ShardGroup)accepting).Shards[0];

        /// <summary>The tags of the endpoint's measurements: its bound address and its name.</summary>
        public MetricTags Tags { get; } = MetricTags.ForEndPoint(accepting.EndPoint, name);

        public SemaphoreSlim? Slots { get; } = slots;

        public TimeSpan FirstByteTimeout { get; } = firstByteTimeout;

        public TimeSpan IdleTimeout { get; } = idleTimeout;

        /// <summary>The endpoint's PROXY protocol receiver (<c>ProxyProtocol</c>, its own or the server's); none when off.</summary>
        public NetStream.Transport.ProxyProtocol.ProxyProtocolReceiver? ProxyProtocol { get; init; }

        public bool HasTimeouts => FirstByteTimeout != Timeout.InfiniteTimeSpan || IdleTimeout != Timeout.InfiniteTimeSpan;

        public Task AcceptLoop { get; set; } = Task.CompletedTask;
    }
}
