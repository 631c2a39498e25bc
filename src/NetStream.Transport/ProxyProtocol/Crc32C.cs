namespace NetStream.Transport.ProxyProtocol;

/// <summary>
/// CRC-32C (Castagnoli, RFC 4960 appendix B), the checksum of the PROXY protocol's <c>PP2_TYPE_CRC32C</c> TLV. A table
/// in software: it runs once per header of a few hundred bytes, so the SSE4.2 instruction would buy nothing worth an
/// architecture check.
/// </summary>
internal static class Crc32C
{
    // The polynomial 0x1EDC6F41, bit-reversed: the table walks the bytes least significant bit first.
    private const uint ReflectedPolynomial = 0x82F63B78;

    /// <summary>The running state before any byte.</summary>
    public const uint Start = 0xFFFFFFFF;

    private static readonly uint[] Table = BuildTable();

    /// <summary>The checksum of <paramref name="data"/> on its own.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Start, data));

    /// <summary>Folds <paramref name="data"/> into a running state, so that a checksum can be taken over pieces.</summary>
    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        var table = Table;
        foreach (var b in data)
        {
            state = table[(byte)(state ^ b)] ^ (state >> 8);
        }

        return state;
    }

    /// <summary>The checksum of everything folded into <paramref name="state"/>.</summary>
    public static uint Finish(uint state) => ~state;

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var entry = i;
            for (var bit = 0; bit < 8; bit++)
            {
                entry = (entry & 1) != 0 ? (entry >> 1) ^ ReflectedPolynomial : entry >> 1;
            }

            table[i] = entry;
        }

        return table;
    }
}
