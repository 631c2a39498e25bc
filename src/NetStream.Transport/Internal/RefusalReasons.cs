namespace NetStream.Transport.Internal;

/// <summary>The <c>reason</c> tag values of <c>netstream.connections.refused</c>.</summary>
internal static class RefusalReasons
{
    public const string NewConnectionFailed = "new_connection_failed";
    public const string Hook = "hook";
    public const string HookFailed = "hook_failed";
    public const string HookTimeout = "hook_timeout";
    public const string ConnectionLimit = "connection_limit";
}
