using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>The effective user id of this process, which a handoff's two sides compare with their peer's.</summary>
internal static partial class ProcessUser
{
    public static int Id { get; } = GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial int GetEffectiveUserId();
}
