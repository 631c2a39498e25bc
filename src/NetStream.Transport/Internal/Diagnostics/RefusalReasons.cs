namespace NetStream.Transport.Internal;

/// <summary>The <c>error.type</c> tag values of <c>netstream.connections.refused</c> that NetStream itself sets.</summary>
internal static class RefusalReasons
{
    public const string NewConnectionFailed = "new_connection_failed";
    public const string HookFailed = "hook_failed";
    public const string HookTimeout = "hook_timeout";
    public const string IpDenied = "ip_denied";
    public const string IpLimit = "ip_limit";
    public const string EndpointLimit = "endpoint_limit";
}
