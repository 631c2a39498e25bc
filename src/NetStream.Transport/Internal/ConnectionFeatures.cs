using System.Collections;
using Microsoft.AspNetCore.Http.Features;

namespace NetStream.Transport.Internal;

/// <summary>
/// The feature collection of a <see cref="NetStreamConnection"/>: the connection itself answers for the
/// features it implements, without a dictionary; anything else (Kestrel adds its own) goes in one made on demand.
/// A feature set explicitly takes precedence over the built-in one.
/// </summary>
internal sealed class ConnectionFeatures(NetStreamConnection connection) : IFeatureCollection
{
    private static readonly Type[] s_builtIn = NetStreamConnection.BuiltInFeatures;

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
                return feature;
            }

            return IsBuiltIn(key) ? connection : null;
        }
        set
        {
            // Kestrel adds about half a dozen features to every connection: sized so that it never grows.
            _extra ??= new Dictionary<Type, object>(capacity: 8);
            if (value is null)
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
            if (_extra is null || !_extra.ContainsKey(type))
            {
                yield return new KeyValuePair<Type, object>(type, connection);
            }
        }

        if (_extra is not null)
        {
            foreach (var pair in _extra)
            {
                yield return pair;
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
