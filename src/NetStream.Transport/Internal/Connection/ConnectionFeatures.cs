using System.Collections;
using Microsoft.AspNetCore.Http.Features;

namespace NetStream.Transport.Internal;

/// <summary>
/// The feature collection of a <see cref="NetStreamConnection"/>: the connection itself answers for the
/// features it implements, without a dictionary; anything else (Kestrel adds its own) goes in one made on demand.
/// A feature set explicitly takes precedence over the built-in one, and a built-in one set to null is gone.
/// </summary>
internal sealed class ConnectionFeatures(NetStreamConnection connection) : IFeatureCollection
{
    private static readonly Type[] s_builtIn = NetStreamConnection.BuiltInFeatures;

    /// <summary>Stands for a built-in feature removed with <c>Set(null)</c>, e.g. the socket hidden from what follows.</summary>
    private static readonly object s_removed = new();

    private Dictionary<Type, object>? _extra;
    private int _revision;

    public bool IsReadOnly => false;

    public int Revision => _revision;

    public object? this[Type key]
    {
        get
        {
            if (_extra is not null && _extra.TryGetValue(key, out var feature))
            {
                return ReferenceEquals(feature, s_removed) ? null : feature;
            }

            return IsBuiltIn(key) && Serves(key) ? connection : null;
        }
        set
        {
            // Kestrel adds about half a dozen features to every connection: sized so that it never grows.
            _extra ??= new Dictionary<Type, object>(capacity: 8);
            if (value is null && IsBuiltIn(key))
            {
                _extra[key] = s_removed;
            }
            else if (value is null)
            {
                _extra.Remove(key);
            }
            else
            {
                _extra[key] = value;
            }

            _revision++;
        }
    }

    public TFeature? Get<TFeature>() => (TFeature?)this[typeof(TFeature)];

    /// <summary>Whether this connection serves the built-in feature <paramref name="key"/>: TCP_INFO only on TCP.</summary>
    private bool Serves(Type key) => !ReferenceEquals(key, typeof(ITcpInfoFeature)) || connection.IsTcp;

    private static bool IsBuiltIn(Type key)
    {
        foreach (var type in s_builtIn)
        {
            if (ReferenceEquals(type, key))
            {
                return true;
            }
        }

        return false;
    }

    public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

    public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
    {
        foreach (var type in s_builtIn)
        {
            if ((_extra is null || !_extra.ContainsKey(type)) && Serves(type))
            {
                yield return new KeyValuePair<Type, object>(type, connection);
            }
        }

        if (_extra is not null)
        {
            foreach (var pair in _extra)
            {
                if (!ReferenceEquals(pair.Value, s_removed))
                {
                    yield return pair;
                }
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
