using System.Globalization;

namespace NetStream.Transport.Internal;

/// <summary>The kernel's <c>SOMAXCONN</c>: the seed's default backlog.</summary>
internal static class Somaxconn
{
    internal const string Path = "/proc/sys/net/core/somaxconn";

    // The fallback is Linux's default since 5.4; older kernels said 128.
    internal const int Fallback = 4096;

    private static readonly Lazy<int> s_value = new(Read);

    /// <summary>The value read once per process.</summary>
    public static int Value => s_value.Value;

    internal static int Read()
    {
        try
        {
            var text = File.ReadAllText(Path).Trim();
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
                ? value
                : Fallback;
        }
        catch (IOException)
        {
            return Fallback;
        }
        catch (UnauthorizedAccessException)
        {
            return Fallback;
        }
    }
}
