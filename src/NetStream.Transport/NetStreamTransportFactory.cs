using System.Buffers;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;
using NetStream.Transport.Internal.Handoff;

namespace NetStream.Transport;

/// <summary>
/// Binds NetStream listeners: TCP over IPv4 and IPv6 (dual-mode for <c>[::]</c>), Unix sockets, and inherited
/// listening descriptors (<see cref="FileHandleEndPoint"/>). Kestrel picks it for every endpoint
/// <see cref="CanBind"/> accepts; the rest fall through to the next transport.
/// </summary>
public sealed class NetStreamTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly IOptions<NetStreamTransportOptions> _options;
    private readonly ILogger _logger;
    private readonly INewConnectionHook _newConnection;
    private readonly IMemoryPoolFactory<byte>? _memoryPoolFactory;
    private readonly NetStreamMetrics _metrics;
    private readonly ListenerRegistry? _registry;
    private readonly KestrelEndpointOptions? _endpointOptions;
    private readonly Lock _handoffLock = new();
    private HandoffInbox? _handoff;

    /// <summary>Makes a factory with the default options, outside dependency injection (Bedrock-style use).</summary>
    public NetStreamTransportFactory()
        : this(new NetStreamTransportOptions())
    {
    }

    /// <summary>Makes a factory outside dependency injection, for Bedrock-style use.</summary>
    /// <param name="options">The transport options; checked at each bind, as a host checks them at start-up.</param>
    /// <param name="newConnection">The <c>new_connection</c> hook; <see langword="null"/> for the default connection.</param>
    /// <param name="loggerFactory">Where the transport logs; <see langword="null"/> for nowhere.</param>
    public NetStreamTransportFactory(NetStreamTransportOptions options, INewConnectionHook? newConnection = null, ILoggerFactory? loggerFactory = null)
        : this(Microsoft.Extensions.Options.Options.Create(options ?? throw new ArgumentNullException(nameof(options))), loggerFactory, newConnection, EmptyServices.Instance)
    {
    }

    /// <summary>Makes a factory outside dependency injection, for Bedrock-style use.</summary>
    /// <param name="options">The transport options.</param>
    /// <param name="loggerFactory">Where the transport logs; <see langword="null"/> for nowhere.</param>
    public NetStreamTransportFactory(IOptions<NetStreamTransportOptions> options, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, null, EmptyServices.Instance)
    {
    }

    /// <summary>
    /// Makes the factory of a service container (what <c>AddNetStream()</c> registers, and what
    /// <c>ActivatorUtilities.CreateInstance</c> picks, as Bedrock's <c>Listen&lt;T&gt;</c> does): the <c>new_connection</c>
    /// hook, the memory pool factory and the metrics come from <paramref name="services"/> when it has them.
    /// </summary>
    /// <param name="options">The transport options.</param>
    /// <param name="services">The container.</param>
    /// <param name="loggerFactory">Where the transport logs; <see langword="null"/> for nowhere.</param>
    [ActivatorUtilitiesConstructor]
    public NetStreamTransportFactory(IOptions<NetStreamTransportOptions> options, IServiceProvider services, ILoggerFactory? loggerFactory = null)
        : this(options, loggerFactory, null, services)
    {
    }

    private NetStreamTransportFactory(IOptions<NetStreamTransportOptions> options, ILoggerFactory? loggerFactory, INewConnectionHook? newConnection, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        // Read on first use, not here: Kestrel builds its transports when the app is built, and invalid options
        // must fail the start (ValidateOnStart), not the build.
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("NetStream.Transport");
        _newConnection = newConnection ?? services.GetService<INewConnectionHook>() ?? DefaultNewConnectionHook.Instance;
        _memoryPoolFactory = services.GetService<IMemoryPoolFactory<byte>>();
        _registry = services.GetService<ListenerRegistry>();
        _endpointOptions = services.GetService<KestrelEndpointOptions>();
        _metrics = services.GetService<NetStreamMetrics>()
            ?? (services.GetService<IMeterFactory>() is { } meters ? new NetStreamMetrics(meters) : NetStreamMetrics.Shared);
    }

    /// <summary>The options listeners get unless <see cref="BindAsync(EndPoint, NetStreamTransportOptions, CancellationToken)"/> is given others.</summary>
    public NetStreamTransportOptions Options => _options.Value;

    /// <summary>Whether NetStream binds <paramref name="endpoint"/>: IP, Unix socket, or an inherited socket descriptor.</summary>
    /// <param name="endpoint">The endpoint Kestrel is about to bind.</param>
    public bool CanBind(EndPoint endpoint) => endpoint switch
    {
        IPEndPoint or UnixDomainSocketEndPoint => true,
        FileHandleEndPoint handle => handle.FileHandleType is FileHandleType.Auto or FileHandleType.Tcp,
        _ => false,
    };

    /// <summary>Binds <paramref name="endpoint"/> with the factory's options, or the endpoint's own (Kestrel's <c>listen.UseNetStreamTransport(...)</c>).</summary>
    /// <param name="endpoint">Where to listen.</param>
    /// <param name="cancellationToken">Unused: binding does not wait.</param>
    /// <exception cref="AddressInUseException">Another socket is bound there, or a process accepts on the Unix socket file.</exception>
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
        new(BindGroup(endpoint, _endpointOptions?.For(endpoint, _options.Value) ?? _options.Value));

    /// <summary>
    /// Binds <paramref name="endpoint"/>: one listener, or for a TCP endpoint with <see cref="NetStreamTransportOptions.AcceptShards"/>
    /// above 1 a <see cref="ShardGroup"/> of that many in an <c>SO_REUSEPORT</c> group (port 0 resolved by the first).
    /// </summary>
    internal IConnectionListener BindGroup(EndPoint endpoint, NetStreamTransportOptions options)
    {
        if (options.AcceptShards <= 1 || endpoint is not IPEndPoint ip)
        {
            return Bind(endpoint, options);
        }

        var shardOptions = options.Clone();
        shardOptions.ReusePort = true;
        var shards = new List<NetStreamListener>(options.AcceptShards);
        try
        {
            shards.Add(Bind(ip, shardOptions));
            var bound = (IPEndPoint)shards[0].EndPoint;
            while (shards.Count < options.AcceptShards)
            {
                shards.Add(Bind(new IPEndPoint(ip.Address, bound.Port), shardOptions));
            }
        }
        catch
        {
            foreach (var shard in shards)
            {
                shard.DisposeAsync().AsTask().GetAwaiter().GetResult(); // completes synchronously: nothing accepted yet
            }

            throw;
        }

        return new ShardGroup([.. shards]);
    }

    /// <summary>The seed's <c>listen(backlog)</c>: binds <paramref name="endpoint"/> with its own options (backlog, socket options, file mode).</summary>
    /// <param name="endpoint">Where to listen.</param>
    /// <param name="options">The options of this endpoint.</param>
    /// <param name="cancellationToken">Unused: binding does not wait.</param>
    /// <exception cref="AddressInUseException">Another socket is bound there, or a process accepts on the Unix socket file.</exception>
    public ValueTask<NetStreamListener> BindAsync(EndPoint endpoint, NetStreamTransportOptions options, CancellationToken cancellationToken = default) =>
        new(Bind(endpoint, options));

    private NetStreamListener Bind(EndPoint endpoint, NetStreamTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(options);
        if (!CanBind(endpoint))
        {
            throw new NotSupportedException($"NetStream cannot bind {endpoint.GetType().Name} {endpoint}.");
        }

        // A host checked them at start-up already; options made in code, without one, are checked here alike.
        var errors = NetStreamTransportOptionsValidator.Validate(options, NetStreamTransportOptions.SectionName);
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(Microsoft.Extensions.Options.Options.DefaultName, typeof(NetStreamTransportOptions), errors);
        }

        string? handedOverFile = null;
        var handedOver = Handoff()?.Take(endpoint);
        if (handedOver is not null)
        {
            Log.HandoffSocketTaken(_logger, endpoint);
            // A Unix socket handed over keeps its file, which this process removes at its own final unbind (unless it
            // hands the socket on in turn).
            handedOverFile = endpoint is UnixDomainSocketEndPoint unix && unix.ToString() is { Length: > 0 } path && path[0] is not ('\0' or '@') ? path : null;
            endpoint = new TakenFileHandleEndPoint((ulong)handedOver.Descriptor);
        }

        var bound = ListenSocket.Create(endpoint, options, _logger);
        if (handedOver is not null)
        {
            try
            {
                bound = HandedOverSettings.Apply(bound, handedOver.Offered, options, _logger) with { UnixPath = handedOverFile };
            }
            catch
            {
                ListenSocket.Release(bound);
                throw;
            }
        }

        Log.Listening(_logger, options.Engine, bound.EndPoint, bound.Backlog?.ToString(CultureInfo.InvariantCulture) ?? "as its owner set it");
        if (bound.EndPoint is UnixDomainSocketEndPoint && SocketConfigurator.TcpOnlyOptionsSet(options) is { Count: > 0 } ignored)
        {
            // Not an error: one configuration usually serves TCP and Unix endpoints alike. Not silent either.
            Log.TcpOnlyOptionsIgnored(_logger, string.Join(", ", ignored), bound.EndPoint);
        }
        try
        {
            var listener = new NetStreamListener(bound, options, _newConnection, CreatePool(), _logger, _metrics, _registry);
            _registry?.Add(listener);
            return listener;
        }
        catch
        {
            // An application's memory pool factory may throw: the socket bound for nothing is released.
            ListenSocket.Release(bound);
            throw;
        }
    }

    /// <summary>
    /// The sockets the process at <see cref="HandoffOptions.Path"/> handed over, asked for at the first bind (the
    /// factory's options say where; a bind's own options cannot move it); null without a path.
    /// </summary>
    private HandoffInbox? Handoff()
    {
        if (_options.Value.Handoff is not { Path: { } path } handoff)
        {
            return null;
        }

        lock (_handoffLock)
        {
            return _handoff ??= HandoffInbox.Receive(path, handoff.Timeout, _logger, _metrics);
        }
    }

    /// <summary>The host has started: the predecessor is told to stop, the sockets no endpoint took are closed.</summary>
    internal void HandoffStarted()
    {
        lock (_handoffLock)
        {
            _handoff?.Started();
        }
    }

    private MemoryPool<byte> CreatePool() => _memoryPoolFactory?.Create() ?? new PinnedBlockMemoryPool();

    private sealed class EmptyServices : IServiceProvider
    {
        public static readonly EmptyServices Instance = new();

        public object? GetService(Type serviceType) => null;
    }
}
