using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using NetStream.Transport.Hooks;

namespace NetStream.Transport;

/// <summary>Configures NetStream in a service collection: its options and its hooks.</summary>
public sealed class NetStreamBuilder
{
    internal NetStreamBuilder(IServiceCollection services) => Services = services;

    /// <summary>The service collection NetStream is registered in.</summary>
    public IServiceCollection Services { get; }

    /// <summary>Configures the transport options in code, after they are bound from configuration.</summary>
    /// <param name="configure">Changes the options.</param>
    public NetStreamBuilder Configure(Action<NetStreamTransportOptions> configure)
    {
        Services.Configure(configure);
        return this;
    }

    /// <summary>
    /// Adds an <c>accepted</c> hook after those already added. Its constructor can take any service. A singleton
    /// (the default) is made once; a scoped or transient hook is made per connection, in a scope of that connection
    /// that lives until the connection ends.
    /// </summary>
    /// <typeparam name="THook">The hook.</typeparam>
    /// <param name="lifetime">How often the hook is made.</param>
    public NetStreamBuilder AddAcceptedHook<THook>(ServiceLifetime lifetime = ServiceLifetime.Singleton)
        where THook : class, IAcceptedHook
    {
        Services.TryAdd(ServiceDescriptor.Describe(typeof(THook), typeof(THook), lifetime));
        Services.AddSingleton(new AcceptedHookRegistration(typeof(THook), lifetime));
        return this;
    }

    /// <summary>Adds an <c>accepted</c> hook given as a function, after those already added.</summary>
    /// <param name="hook">Decides what happens to each connection; <see cref="AcceptedContext.Services"/> gives it services.</param>
    public NetStreamBuilder AddAcceptedHook(Func<AcceptedContext, ValueTask<AcceptedResult>> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        Services.AddSingleton(new AcceptedHookRegistration(new DelegateAcceptedHook(hook)));
        return this;
    }

    /// <summary>
    /// Runs the built-in hooks (<see cref="HookOptions.Allow"/>, <see cref="HookOptions.Deny"/>, the connection limits)
    /// here, after the hooks added so far, instead of first: e.g. after a hook that replaces the address info with the
    /// real client behind a proxy, so the lists and the per-IP limit see that client.
    /// </summary>
    public NetStreamBuilder AddBuiltInHooks()
    {
        if (!Services.Any(d => d.ImplementationInstance == AcceptedHookRegistration.BuiltInMarker))
        {
            Services.AddSingleton(AcceptedHookRegistration.BuiltInMarker);
        }

        return this;
    }

    /// <summary>Replaces the <c>new_connection</c> hook, which makes the connection out of each accepted socket.</summary>
    /// <typeparam name="THook">The hook, made once; its constructor can take any singleton service.</typeparam>
    public NetStreamBuilder UseNewConnectionHook<THook>()
        where THook : class, INewConnectionHook
    {
        Services.Replace(ServiceDescriptor.Singleton<INewConnectionHook, THook>());
        return this;
    }
}
