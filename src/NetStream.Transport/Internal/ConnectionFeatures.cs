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

            return Array.IndexOf(s_builtIn, key) >= 0 ? connection : null;
        }
        set
        {
            _extra ??= new Dictionary<Type, object>();
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
