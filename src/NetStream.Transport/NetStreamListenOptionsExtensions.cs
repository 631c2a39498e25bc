using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Transport;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;
using NetStream.Transport.ProxyProtocol;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Puts NetStream's <c>accepted</c> hooks on a Kestrel endpoint.</summary>
public static class NetStreamListenOptionsExtensions
{
    /// <summary>
    /// Runs the <c>accepted</c> hook chain (<see cref="AcceptedHookChain"/>) on every connection of this endpoint, at
    /// this point of its connection middleware. <c>UseNetStream()</c> already puts the chain first on every endpoint;
    /// call this to place it elsewhere, e.g. after <c>UseHttps</c>: the chain then runs here only. Calling it again on
    /// the same endpoint does nothing.
    /// </summary>
    /// <param name="listenOptions">The endpoint.</param>
    public static ListenOptions UseNetStreamHooks(this ListenOptions listenOptions)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        KestrelHooks.InstallExplicit(listenOptions);
        return listenOptions;
    }

    /// <summary>
    /// Gives this endpoint transport options of its own, e.g. <c>listen.UseNetStreamTransport(o =&gt; o.Engine =
    /// NetStreamEngine.Sockets)</c> or <c>o.AcceptShards = 4</c>: <paramref name="configure"/> changes a copy of the
    /// <c>NetStream</c> options for this endpoint alone, checked when it is bound. The <c>accepted</c> hooks' options stay
    /// shared (see <see cref="UseProxyProtocol"/> for the PROXY protocol's).
    /// </summary>
    /// <param name="listenOptions">The endpoint.</param>
    /// <param name="configure">Changes this endpoint's options.</param>
    public static ListenOptions UseNetStreamTransport(this ListenOptions listenOptions, Action<NetStreamTransportOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        ArgumentNullException.ThrowIfNull(configure);
        var endpoints = listenOptions.ApplicationServices.GetService<KestrelEndpointOptions>()
            ?? throw new InvalidOperationException("UseNetStreamTransport needs NetStream as Kestrel's transport: call builder.WebHost.UseNetStream() first.");
        endpoints.Add(listenOptions.EndPoint, configure);
        return listenOptions;
    }

    /// <summary>
    /// Reads a PROXY protocol header (v1 or v2) from every connection of this endpoint before anything else does, so that
    /// <c>HttpContext.Connection.RemoteIpAddress</c>, the logs and NetStream's IP lists and limits see the client behind
    /// the load balancer. Starts from <c>NetStream:ProxyProtocol</c> (with <c>Mode</c> = <c>Require</c> if it is off there);
    /// <paramref name="configure"/> says the rest, e.g. <c>o =&gt; o.TrustedProxies.Add("10.0.0.0/8")</c>. Without this
    /// call, <c>NetStream:ProxyProtocol</c> applies to every endpoint. The receiver runs where the <c>accepted</c> chain
    /// runs: first by default; an endpoint that places the chain itself must not place it after <c>UseHttps</c>.
    /// </summary>
    /// <param name="listenOptions">The endpoint.</param>
    /// <param name="configure">Sets this endpoint's receiver options.</param>
    public static ListenOptions UseProxyProtocol(this ListenOptions listenOptions, Action<ProxyProtocolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(listenOptions);
        KestrelHooks.UseProxyProtocol(listenOptions, configure ?? (static _ => { }));
        return listenOptions;
    }
}
