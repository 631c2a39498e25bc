using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// The new process's side of a handoff: at its first bind it asks the process at <see cref="HandoffOptions.Path"/> for
/// its listening sockets, checks each, and hands them to the binds whose endpoint they match; once the host has started
/// it tells the old process so (which then stops accepting and drains) and closes what no endpoint took. Any failure
/// leaves the inbox empty, with a log line that says why: the process binds as usual, and the old one keeps serving.
/// </summary>
internal sealed class HandoffInbox
{
    private readonly Socket? _peer;
    private readonly Dictionary<string, Queue<HandedOverSocket>> _sockets;
    private readonly ILogger _logger;
    private readonly NetStreamMetrics _metrics;

    private HandoffInbox(Socket? peer, Dictionary<string, Queue<HandedOverSocket>> sockets, ILogger logger, NetStreamMetrics metrics)
    {
        _peer = peer;
        _sockets = sockets;
        _logger = logger;
        _metrics = metrics;
    }


    /// <summary>Asks the process at <paramref name="path"/> for its sockets; an empty inbox when there is none, or it fails.</summary>
    public static HandoffInbox Receive(string path, TimeSpan timeout, ILogger logger, NetStreamMetrics metrics)
    {
        if (!File.Exists(path))
        {
            Log.HandoffNoPeer(logger, path);
            return new HandoffInbox(null, [], logger, metrics);
        }

        var peer = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        var received = new List<int>();
        try
        {
            peer.ReceiveTimeout = peer.SendTimeout = (int)Math.Min(timeout.TotalMilliseconds, int.MaxValue);
            try
            {
                peer.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
            {
                // A file left by a process that is gone.
                Log.HandoffNoPeer(logger, path);
                peer.Dispose();
                return new HandoffInbox(null, [], logger, metrics);
            }

            // Only a process of this user (or root) may hand sockets to this one: a stranger's socket adopted without a
            // word would serve where a bind of our own would have failed, and the stranger would keep a copy.
            if (PeerCredentials.Read(peer) is not { } owner || (owner.UserId != ProcessUser.Id && owner.UserId != 0))
            {
                throw new InvalidDataException($"the process there runs as another user ({PeerCredentials.Read(peer)?.UserId.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"})");
            }

            HandoffWire.Send(peer, new HandoffMessage { Hello = HandoffMessage.Protocol, ProcessId = Environment.ProcessId });
            var (offer, stray) = HandoffWire.Receive(peer);
            received.AddRange(stray);
            if (offer?.Error is { } error)
            {
                throw new InvalidDataException($"the process there refused: {error}");
            }

            if (offer?.Offer is not { } manifest || stray.Length > 0)
            {
                throw new InvalidDataException(offer is null ? "the peer closed before its offer" : "the peer's first message is not an offer");
            }

            while (received.Count < manifest.Count)
            {
                var (batch, descriptors) = HandoffWire.Receive(peer);
                received.AddRange(descriptors);
                if (batch is null)
                {
                    throw new InvalidDataException($"the peer closed after {received.Count} of the {manifest.Count} sockets it offered");
                }

                if (batch.Descriptors != descriptors.Length)
                {
                    throw new InvalidDataException($"a message said it carries {batch.Descriptors?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} descriptors and carried {descriptors.Length}");
                }
            }

            if (received.Count != manifest.Count)
            {
                throw new InvalidDataException($"the peer offered {manifest.Count} sockets and sent {received.Count} descriptors");
            }

            // Several sockets share an address in an AcceptShards group: each bind of it takes the next.
            var sockets = new Dictionary<string, Queue<HandedOverSocket>>(StringComparer.Ordinal);
            for (var i = 0; i < manifest.Count; i++)
            {
                var key = Key(Check(received[i], manifest[i]));
                if (!sockets.TryGetValue(key, out var queue))
                {
                    sockets[key] = queue = new Queue<HandedOverSocket>();
                }

                queue.Enqueue(new HandedOverSocket(received[i], manifest[i]));
            }

            Log.HandoffReceived(logger, received.Count, path);
            metrics.Handoff("received");
            return new HandoffInbox(peer, sockets, logger, metrics);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever failed (the peer, a descriptor that is not what it says), nothing received is kept.
            foreach (var descriptor in received)
            {
                Descriptor.Close((ulong)descriptor);
            }

            peer.Dispose();
            Log.HandoffRefused(logger, path, e.Message);
            metrics.Handoff("received", "refused");
            return new HandoffInbox(null, [], logger, metrics);
        }
    }

    /// <summary>The offered socket bound to <paramref name="endPoint"/>, now the caller's; null when none is.</summary>
    public HandedOverSocket? Take(EndPoint endPoint)
    {
        if (endPoint is IPEndPoint { Port: 0 })
        {
            return null; // any port: a new one
        }

        lock (_sockets)
        {
            if (!_sockets.TryGetValue(Key(endPoint), out var queue) || !queue.TryDequeue(out var socket))
            {
                return null;
            }

            _metrics.HandoffSocketTaken(endPoint);
            return socket;
        }
    }

    /// <summary>The host has started: tells the old process, which stops accepting and drains; closes the sockets no endpoint took.</summary>
    public void Started()
    {
        lock (_sockets)
        {
            foreach (var (address, queue) in _sockets)
            {
                foreach (var unused in queue)
                {
                    Log.HandoffSocketUnused(_logger, address);
                    Descriptor.Close((ulong)unused.Descriptor);
                }
            }

            _sockets.Clear();
        }

        if (_peer is null)
        {
            return;
        }

        try
        {
            HandoffWire.Send(_peer, new HandoffMessage { Started = true });
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            Log.HandoffRefused(_logger, "the old process", $"it went away before it was told to stop ({e.Message}); it serves on with this one");
        }
        finally
        {
            _peer.Dispose();
        }
    }

    /// <summary>The key both sides agree on: the kind and the bound address.</summary>
    private static string Key(EndPoint endPoint) => $"{HandoffWire.Describe(endPoint).Kind} {HandoffWire.Describe(endPoint).Address}";

    /// <summary>What the descriptor is: a listening stream socket bound where the offer says, or an error.</summary>
    private static EndPoint Check(int descriptor, OfferedSocket offered)
    {
        using var socket = new Socket(new SafeSocketHandle(descriptor, ownsHandle: false));
        if (socket.SocketType != SocketType.Stream)
        {
            throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} is not a stream socket ({socket.SocketType})");
        }

        if (!SocketConfigurator.IsListening(socket))
        {
            throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} is not listening");
        }

        if (offered.Family is { } family && family != HandoffWire.Family(socket.AddressFamily))
        {
            throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} of family {family} is of family {HandoffWire.Family(socket.AddressFamily)}");
        }

        if (offered.Type is { } type && type != "stream")
        {
            throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} is said to be of type {type}, which NetStream does not listen on");
        }

        var bound = socket.LocalEndPoint ?? throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} has no address");
        var actual = HandoffWire.Describe(bound);
        if (!actual.SameEndpoint(offered))
        {
            throw new InvalidDataException($"the socket offered as {offered.Kind} {offered.Address} is bound to {actual.Kind} {actual.Address}");
        }

        return bound;
    }
}

/// <summary>A listening socket received from the old process, with what the old process said of it.</summary>
internal sealed record HandedOverSocket(int Descriptor, OfferedSocket Offered);
