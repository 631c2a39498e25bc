using System.Net;
using NetStream.Transport.Internal;

namespace NetStream.Transport.Hooks;

/// <summary>The built-in allow and deny lists (<see cref="HookOptions.Allow"/>, <see cref="HookOptions.Deny"/>): deny wins.</summary>
internal sealed class IpFilterHook(IPNetwork[] allow, IPNetwork[] deny) : IAcceptedHook
{
    private static readonly ValueTask<AcceptedResult> s_pass = new(AcceptedResult.Pass);
    private static readonly ValueTask<AcceptedResult> s_denied = new(AcceptedResult.Refuse(RefusalReasons.IpDenied));

    public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
    {
        // Unix socket peers have no address to filter on.
        if (context.AddressInfo.RemoteEndPoint is not IPEndPoint { Address: var address })
        {
            return s_pass;
        }

        // A dual-mode socket reports IPv4 peers as ::ffff:a.b.c.d; the lists say a.b.c.d.
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var denied = Contains(deny, address) || (allow.Length > 0 && !Contains(allow, address));
        return denied ? s_denied : s_pass;
    }

    private static bool Contains(IPNetwork[] networks, IPAddress address)
    {
        foreach (var network in networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }
}
