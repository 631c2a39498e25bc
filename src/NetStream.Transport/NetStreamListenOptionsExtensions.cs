using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Transport.Hooks;
using NetStream.Transport.Internal;

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
}
