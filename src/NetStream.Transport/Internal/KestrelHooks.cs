using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NetStream.Transport.Hooks;

namespace NetStream.Transport.Internal;

/// <summary>
/// Puts the <c>accepted</c> chain in front of every Kestrel endpoint's connection middleware. Kestrel reaches every
/// endpoint through <see cref="KestrelServerOptions.ConfigureEndpointDefaults"/>, but that is last-writer-wins: a
/// user's own call would silently drop the hooks (and with them an IP deny list). So the defaults are set first, and
/// checked again once all configuration ran.
/// </summary>
internal static class KestrelHooks
{
    private static readonly ConditionalWeakTable<ListenOptions, object> s_installed = [];

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
            new ConfigureOptions<KestrelServerOptions>(static options => options.ConfigureEndpointDefaults(Install))));
        services.AddSingleton<IPostConfigureOptions<KestrelServerOptions>>(new RestoreHooks());
    }

    public static void Install(ListenOptions listenOptions)
    {
        if (s_installed.TryGetValue(listenOptions, out _))
        {
            return;
        }

        s_installed.Add(listenOptions, listenOptions);
        listenOptions.Use(next =>
        {
            // Built when Kestrel binds the endpoint, after the app's services exist.
            var chain = listenOptions.ApplicationServices.GetService<AcceptedHookChain>();
            if (chain is null || chain.IsEmpty)
            {
                return next;
            }

            string? endpoint = null;
            return connection => chain.RunAsync(connection, next, endpoint ??= listenOptions.ToString());
        });
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
                    Install(listenOptions);
                }));
            }

            if (s_codeBackedListenOptions?.GetValue(options) is IEnumerable<ListenOptions> declared)
            {
                foreach (var listenOptions in declared)
                {
                    Install(listenOptions);
                }
            }
        }
    }
}
