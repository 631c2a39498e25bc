namespace NetStream.Transport;

/// <summary>
/// Listener handoff: the listening sockets passed from a running process to the one replacing it, over a Unix socket,
/// so that a restart refuses no connection. See the README's "Restarts with a handoff".
/// </summary>
public sealed class HandoffOptions
{
    /// <summary>
    /// The Unix socket where this process offers its listening sockets to its successor, and where a starting process
    /// looks for a predecessor to take them from, e.g. <c>/run/app/handoff.sock</c>. Mode 0600; only a peer of the same
    /// user (or root) is served. Default <see langword="null"/>: no handoff.
    /// </summary>
    public string? Path { get; set; }

    /// <summary>
    /// How long each side waits for the other: the new process for the sockets, the old one for the new one to say it
    /// has started (then it keeps serving, and says why). Default 30 seconds.
    /// </summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    internal HandoffOptions Clone() => (HandoffOptions)MemberwiseClone();
}
