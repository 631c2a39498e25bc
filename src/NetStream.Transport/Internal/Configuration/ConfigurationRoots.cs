namespace NetStream.Transport.Internal;

/// <summary>
/// The option types the <c>NetStream</c> section binds to. The hosted server adds its own types to the list,
/// so the same section carries transport and server options without either reporting the other's keys as unknown.
/// </summary>
internal static class ConfigurationRoots
{
    private static volatile Type[] s_transportSection = [typeof(NetStreamTransportOptions)];

    public static Type[] TransportSection => s_transportSection;

    public static void Add(Type type)
    {
        lock (typeof(ConfigurationRoots))
        {
            if (!s_transportSection.Contains(type))
            {
                s_transportSection = [.. s_transportSection, type];
            }
        }
    }
}
