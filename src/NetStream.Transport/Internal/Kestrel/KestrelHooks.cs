using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NetStream.Transport.Hooks;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Transport.Internal;

/// <summary>
/// Puts the <c>accepted</c> chain in front of every Kestrel endpoint's connection middleware. Kestrel reaches every
/// endpoint through <see cref="KestrelServerOptions.ConfigureEndpointDefaults"/>, but that is last-writer-wins: a
/// user's own call would silently drop the hooks (and with them an IP deny list). So the defaults are set first, and
/// checked again once all configuration ran; an endpoint the safety net reaches only then gets the chain after the
/// middleware it already has. <c>UseNetStreamHooks()</c> places the chain explicitly, and then the default place is skipped.
/// </summary>
internal static class KestrelHooks
{
    private static readonly ConditionalWeakTable<ListenOptions, Placement> s_placements = [];
    private static readonly ConditionalWeakTable<ListenOptions, Action<ProxyProtocolOptions>> s_proxyProtocol = [];

    // Kestrel internals read by the safety net only; if a later Kestrel renames them, endpoints keep the hooks from
    // the defaults set first, and UseNetStreamHooks() remains the documented way.
    private static readonly PropertyInfo? s_endpointDefaults =
        typeof(KestrelServerOptions).GetProperty("EndpointDefaults", BindingFlags.Instance | BindingFlags.NonPublic);

    private static readonly PropertyInfo? s_codeBackedListenOptions =
        typeof(KestrelServerOptions).GetProperty("CodeBackedListenOptions", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>Registers both steps; the first runs before any other Kestrel configuration.</summary>
    public static void Register(IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(IPostConfigureOptions<KestrelServerOptions>) && d.ImplementationInstance is RestoreHooks))
        {
            return;
        }

        services.Insert(0, ServiceDescriptor.Singleton<IConfigureOptions<KestrelServerOptions>>(
            new ConfigureOptions<KestrelServerOptions>(static options => options.ConfigureEndpointDefaults(InstallDefault))));
        services.AddSingleton<IPostConfigureOptions<KestrelServerOptions>>(new RestoreHooks());
    }

    /// <summary>The place <c>UseNetStream()</c> gives the chain: first, unless the endpoint places it itself.</summary>
    public static void InstallDefault(ListenOptions listenOptions)
    {
        var placement = s_placements.GetOrCreateValue(listenOptions);
        if (!placement.Default)
        {
            placement.Default = true;

            // Decided when Kestrel builds the endpoint, after all configuration ran.
            listenOptions.Use(next => placement.Explicit ? next : Run(listenOptions, next));
        }
    }

    /// <summary>The place <c>UseNetStreamHooks()</c> gives the chain; it wins over the default place.</summary>
    public static void InstallExplicit(ListenOptions listenOptions)
    {
        var placement = s_placements.GetOrCreateValue(listenOptions);
        if (!placement.Explicit)
        {
            placement.Explicit = true;
            listenOptions.Use(next => Run(listenOptions, next));
        }
    }

    /// <summary>Gives an endpoint a PROXY protocol receiver of its own (<c>UseProxyProtocol</c>).</summary>
    public static void UseProxyProtocol(ListenOptions listenOptions, Action<ProxyProtocolOptions> configure) =>
        s_proxyProtocol.AddOrUpdate(listenOptions, configure);

    private static ConnectionDelegate Run(ListenOptions listenOptions, ConnectionDelegate next)
    {
        // Built when Kestrel binds the endpoint, after the app's services exist.
        var services = listenOptions.ApplicationServices;
        var chain = services.GetService<AcceptedHookChain>();
        var proxyProtocol = s_proxyProtocol.TryGetValue(listenOptions, out var configure)
            ? ProxyProtocolOf(listenOptions, services, configure, chain)
            : chain?.DefaultProxyProtocol;
        if (chain is null || (!chain.HasSteps && proxyProtocol is null))
        {
            return next;
        }

        string? endpointName = null;
        return connection => chain.RunAsync(connection, next, endpointName ??= listenOptions.ToString(), proxyProtocol);
    }

    /// <summary>
    /// An endpoint's own receiver: <c>NetStream:ProxyProtocol</c> as a start (<c>Require</c> if that is off), then what
    /// the endpoint's code says; checked as the section is, naming the endpoint.
    /// </summary>
    private static ProxyProtocolReceiver ProxyProtocolOf(ListenOptions listenOptions, IServiceProvider services, Action<ProxyProtocolOptions> configure, AcceptedHookChain? chain)
    {
        if (chain is null)
        {
            throw new InvalidOperationException($"UseProxyProtocol() on {listenOptions}: NetStream is not registered; call builder.WebHost.UseNetStream() (or services.AddNetStream()).");
        }

        var options = services.GetRequiredService<IOptions<NetStreamTransportOptions>>().Value.ProxyProtocol.Clone();
        if (options.Mode == ProxyProtocolMode.Off)
        {
            options.Mode = ProxyProtocolMode.Require;
        }

        configure(options);
        var errors = new List<string>();
        NetStreamTransportOptionsValidator.ValidateProxyProtocol(options, (ok, key, value, rule) =>
        {
            if (!ok)
            {
                errors.Add($"UseProxyProtocol() on {listenOptions}: {key} = '{value}': {rule}.");
            }
        });
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join(" ", errors));
        }

        return AcceptedHookChain.ReceiverFor(options) ?? throw new InvalidOperationException($"UseProxyProtocol() on {listenOptions} set ProxyProtocol:Mode to Off.");
    }

    /// <summary>Re-adds the hooks a user's own <c>ConfigureEndpointDefaults</c> replaced.</summary>
    private sealed class RestoreHooks : IPostConfigureOptions<KestrelServerOptions>
    {
        public void PostConfigure(string? name, KestrelServerOptions options)
        {
            if (s_endpointDefaults?.GetValue(options) is Action<ListenOptions> defaults)
            {
                s_endpointDefaults.SetValue(options, (Action<ListenOptions>)(listenOptions =>
                {
                    defaults(listenOptions);
                    InstallDefault(listenOptions);
                }));
            }

            if (s_codeBackedListenOptions?.GetValue(options) is IEnumerable<ListenOptions> declared)
            {
                foreach (var listenOptions in declared)
                {
                    InstallDefault(listenOptions);
                }
            }
        }
    }

    private sealed class Placement
    {
        public bool Default { get; set; }

        public bool Explicit { get; set; }
    }
}
