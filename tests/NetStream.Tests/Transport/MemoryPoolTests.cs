using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

/// <summary>The pool of the hosted server and of bare listeners keeps what its busiest moment needed, not its peak for ever.</summary>
public sealed class MemoryPoolTests
{
    [Fact]
    public void Blocks_idle_for_a_whole_period_are_let_go_and_those_its_busiest_moment_used_are_kept()
    {
        using var pool = new PinnedBlockMemoryPool(trimOnTimer: false);
        RentAndReturn(pool, 100);
        Assert.Equal(100, pool.Available);

        // The burst's period: every block was in use at one moment, none goes.
        Assert.Equal(0, pool.Trim());

        // A quieter period, 10 blocks in use at most: the other 90 go.
        RentAndReturn(pool, 10);
        Assert.Equal(90, pool.Trim());
        Assert.Equal(10, pool.Available);

        // A period without a rent: the rest goes too, and renting goes on.
        Assert.Equal(10, pool.Trim());
        Assert.Equal(0, pool.Available);
        using var block = pool.Rent();
        Assert.Equal(PinnedBlockMemoryPool.BlockSize, block.Memory.Length);
    }

    private static void RentAndReturn(PinnedBlockMemoryPool pool, int count)
    {
        var blocks = Enumerable.Range(0, count).Select(_ => pool.Rent()).ToList();
        foreach (var block in blocks)
        {
            block.Dispose();
        }
    }
}
