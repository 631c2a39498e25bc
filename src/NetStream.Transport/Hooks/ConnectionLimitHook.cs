using System.Net;
using NetStream.Transport.Internal;

namespace NetStream.Transport.Hooks;

/// <summary>
/// The built-in concurrent-connection limits per endpoint and per remote IP address
/// (<see cref="HookOptions.MaxConnectionsPerEndpoint"/>, <see cref="HookOptions.MaxConnectionsPerIp"/>). At a limit the
/// connection is refused at once, not queued; a slot frees when its connection ends.
/// </summary>
internal sealed class ConnectionLimitHook(int? perEndpoint, int? perIp) : IAcceptedHook
{
    private static readonly ValueTask<AcceptedResult> s_pass = new(AcceptedResult.Pass);
    private static readonly ValueTask<AcceptedResult> s_endpointFull = new(AcceptedResult.Refuse(RefusalReasons.EndpointLimit));
    private static readonly ValueTask<AcceptedResult> s_ipFull = new(AcceptedResult.Refuse(RefusalReasons.IpLimit));

    private readonly Counts<string> _endpoints = new(StringComparer.Ordinal);
    private readonly Counts<IPAddress> _addresses = new(EqualityComparer<IPAddress>.Default);

    public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
    {
        if (perEndpoint is { } endpointMax)
        {
            if (!_endpoints.TryTake(context.EndpointName, endpointMax))
            {
                return s_endpointFull;
            }

            context.OnClosed(static slot => ((Slot<string>)slot!).Release(), new Slot<string>(_endpoints, context.EndpointName));
        }

        if (perIp is { } ipMax && context.AddressInfo.RemoteEndPoint is IPEndPoint { Address: var address })
        {
            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            if (!_addresses.TryTake(address, ipMax))
            {
                return s_ipFull;
            }

            context.OnClosed(static slot => ((Slot<IPAddress>)slot!).Release(), new Slot<IPAddress>(_addresses, address));
        }

        return s_pass;
    }

    private sealed record Slot<TKey>(Counts<TKey> Counts, TKey Key)
        where TKey : notnull
    {
        public void Release() => Counts.Release(Key);
    }

    /// <summary>Open connections per key; a key with none is forgotten, so the table stays as small as the live set.</summary>
    private sealed class Counts<TKey>(IEqualityComparer<TKey> comparer)
        where TKey : notnull
    {
        private readonly Dictionary<TKey, int> _counts = new(comparer);

        public bool TryTake(TKey key, int max)
        {
            lock (_counts)
            {
                _counts.TryGetValue(key, out var count);
                if (count >= max)
                {
                    return false;
                }

                _counts[key] = count + 1;
                return true;
            }
        }

        public void Release(TKey key)
        {
            lock (_counts)
            {
                var count = _counts[key] - 1;
                if (count == 0)
                {
                    _counts.Remove(key);
                }
                else
                {
                    _counts[key] = count;
                }
            }
        }
    }
}
