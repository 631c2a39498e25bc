using System.Collections.Concurrent;

namespace NetStream.Transport.Internal;

/// <summary>The listeners a container's factory has bound and not unbound yet: what the health check reports on.</summary>
internal sealed class ListenerRegistry
{
    private readonly ConcurrentDictionary<NetStreamListener, byte> _listeners = new();

    public void Add(NetStreamListener listener) => _listeners.TryAdd(listener, 0);

    public void Remove(NetStreamListener listener) => _listeners.TryRemove(listener, out _);

    public ICollection<NetStreamListener> Listeners => _listeners.Keys;
}
