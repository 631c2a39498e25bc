using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;

namespace NetStream.Transport.Hooks;

/// <summary>One <c>accepted</c> hook as registered: a DI service type with its lifetime, an instance, or the place of the built-in hooks.</summary>
internal sealed class AcceptedHookRegistration
{
    public AcceptedHookRegistration(Type type, ServiceLifetime lifetime)
    {
        Type = type;
        Lifetime = lifetime;
    }

    public AcceptedHookRegistration(IAcceptedHook instance)
    {
        Instance = instance;
        Lifetime = ServiceLifetime.Singleton;
    }

    private AcceptedHookRegistration()
    {
    }

    /// <summary>Marks where in the chain the built-in hooks run; without it they run first.</summary>
    public static AcceptedHookRegistration BuiltInMarker { get; } = new();

    public bool IsBuiltInMarker => ReferenceEquals(this, BuiltInMarker);

    public Type? Type { get; }

    public IAcceptedHook? Instance { get; }

    public ServiceLifetime Lifetime { get; }
}

/// <summary>An <c>accepted</c> hook given as a function.</summary>
internal sealed class DelegateAcceptedHook(Func<AcceptedContext, ValueTask<AcceptedResult>> hook) : IAcceptedHook
{
    private readonly string _name = NameOf(hook);

    public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context) => hook(context);

    public override string ToString() => _name;

    /// <summary>For the logs: <c>Type.Method</c>, or <c>Type (lambda)</c> for a lambda written in <c>Type</c>.</summary>
    private static string NameOf(Delegate hook)
    {
        var type = hook.Method.DeclaringType;
        var isLambda = hook.Method.Name.StartsWith('<');
        while (type is { DeclaringType: not null } && type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false))
        {
            type = type.DeclaringType;
        }

        return isLambda ? $"{type?.Name} (lambda)" : $"{type?.Name}.{hook.Method.Name}";
    }
}
