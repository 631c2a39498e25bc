using System.Buffers;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace NetStream.Transport.Internal;

/// <summary>The features Kestrel and its middleware read from a transport connection, all served by the connection itself.</summary>
internal sealed partial class NetStreamConnection :
    IConnectionIdFeature,
    IConnectionTransportFeature,
    IConnectionItemsFeature,
    IConnectionLifetimeFeature,
    IConnectionEndPointFeature,
    IMemoryPoolFeature,
    IConnectionSocketFeature,
    IConnectionActivityFeature,
    ITcpInfoFeature
{
    internal static readonly Type[] BuiltInFeatures =
    [
        typeof(IConnectionIdFeature),
        typeof(IConnectionTransportFeature),
        typeof(IConnectionItemsFeature),
        typeof(IConnectionLifetimeFeature),
        typeof(IConnectionEndPointFeature),
        typeof(IMemoryPoolFeature),
        typeof(IConnectionSocketFeature),
        typeof(IConnectionActivityFeature),
        typeof(ITcpInfoFeature), // TCP connections only: see ConnectionFeatures
    ];

    private string? _connectionId;
    private IDictionary<object, object?>? _items;

    public override string ConnectionId
    {
        // Made on first use: a connection nobody logs never formats an id.
        get => _connectionId ??= ConnectionIds.Next();
        set => _connectionId = value;
    }

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public MemoryPool<byte> MemoryPool { get; }

    Socket IConnectionSocketFeature.Socket => _socket;

    /// <summary>Whether the connection is TCP, and so has <see cref="ITcpInfoFeature"/>.</summary>
    internal bool IsTcp => _socket.ProtocolType == ProtocolType.Tcp;

    bool ITcpInfoFeature.TryRead(out TcpInfo info) => TcpInfoReader.TryRead(_socket, out info);

    long IConnectionActivityFeature.LastActivity => Volatile.Read(ref _lastActivity);

    bool IConnectionActivityFeature.HasReceived =>
        Volatile.Read(ref _preambleExpected) == 0 && Volatile.Read(ref _received) > Volatile.Read(ref _preamble);

    void IConnectionActivityFeature.ExpectPreamble() => Volatile.Write(ref _preambleExpected, 1);

    void IConnectionActivityFeature.ConsumedPreamble(long bytes)
    {
        // The count first: a reader that sees the expectation gone sees what the preamble took.
        Interlocked.Add(ref _preamble, bytes);
        Volatile.Write(ref _preambleExpected, 0);
    }

    void IConnectionActivityFeature.TimedOut(string reason) => EndConnection(new ConnectionAbortedException(reason), reset: false);
}
