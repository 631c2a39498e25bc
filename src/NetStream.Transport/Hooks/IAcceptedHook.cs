namespace NetStream.Transport.Hooks;

/// <summary>
/// The seed's <c>accepted(sock, ai)</c>: runs on every accepted connection, in registration order, before the
/// application sees it. It passes the connection on, passes on a replacement connection or address info, or refuses it.
/// </summary>
/// <remarks>
/// Hooks run on the connection's own task, never inside the accept loop, so a slow hook delays only its own
/// connection. The whole chain has a time limit (<see cref="HookOptions.Timeout"/>); past it, or if a hook throws,
/// only that connection is refused. Register hooks with <see cref="NetStreamBuilder.AddAcceptedHook{THook}(Microsoft.Extensions.DependencyInjection.ServiceLifetime)"/>.
/// </remarks>
public interface IAcceptedHook
{
    /// <summary>Decides what happens to the connection in <paramref name="context"/>.</summary>
    /// <param name="context">The connection as the hooks before this one left it, its address info, and the chain's deadline.</param>
    /// <returns><see cref="AcceptedResult.Pass"/>, a replacement (<see cref="AcceptedResult.Replace"/>) or a refusal (<see cref="AcceptedResult.Refuse"/>).</returns>
    ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context);
}
