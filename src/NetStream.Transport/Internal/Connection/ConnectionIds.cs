namespace NetStream.Transport.Internal;

/// <summary>Process-unique connection ids: a prefix made at start-up and a counter, in base 32.</summary>
internal static class ConnectionIds
{
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    private static long s_next = DateTime.UtcNow.Ticks;

    public static string Next() => Format(Interlocked.Increment(ref s_next));

    internal static string Format(long id) => string.Create(13, id, static (chars, value) =>
    {
        for (var i = chars.Length - 1; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
    });
}
