using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// Fixed-size blocks allocated on the pinned object heap and reused, so the socket can read and write
/// straight into pipe memory without pinning on every call. Used when the host registers no
/// <see cref="Microsoft.AspNetCore.Connections.IMemoryPoolFactory{T}"/> (Kestrel registers one).
/// Blocks that nobody rented for a whole trim period are let go, so that a burst (or a peer that made the server
/// buffer a lot) does not keep its memory for the life of the listener.
/// </summary>
internal sealed class PinnedBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    /// <summary>How often idle blocks are let go.</summary>
    private static readonly TimeSpan TrimPeriod = TimeSpan.FromSeconds(10);

    private readonly ConcurrentQueue<Block> _blocks = new();
    private readonly Timer? _trimTimer;
    private int _available;
    private int _lowWater;
    private bool _disposed;

    /// <param name="trimOnTimer">Whether a timer trims the pool; tests trim it themselves.</param>
    public PinnedBlockMemoryPool(bool trimOnTimer = true)
    {
        if (trimOnTimer)
        {
            _trimTimer = new Timer(static pool => ((PinnedBlockMemoryPool)pool!).Trim(), this, TrimPeriod, TrimPeriod);
        }
    }

    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks waiting in the pool for reuse.</summary>
    internal int Available => Volatile.Read(ref _available);

    /// <summary>A block; after <see cref="MemoryPool{T}.Dispose()"/> still one, but not kept for reuse once returned,
    /// so that connections that outlive their listener go on working.</summary>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            // Pipes never ask for more than MaxBufferSize; someone else might.
            return MemoryPool<byte>.Shared.Rent(minBufferSize);
        }

        if (!_blocks.TryDequeue(out var block))
        {
            return new Block(this);
        }

        var available = Interlocked.Decrement(ref _available);
        if (available < Volatile.Read(ref _lowWater))
        {
            // A racy minimum is fine: a trim lets go of a few blocks more or fewer.
            Volatile.Write(ref _lowWater, available);
        }

        return block;
    }

    /// <summary>
    /// Lets go of the blocks that stayed in the pool all through the period since the last trim (its low-water
    /// mark): the pool then keeps what the busiest moment of that period needed. Returns how many it let go.
    /// </summary>
    internal int Trim()
    {
        var idle = Volatile.Read(ref _lowWater);
        var released = 0;
        while (released < idle && _blocks.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _available);
            released++;
        }

        Volatile.Write(ref _lowWater, Volatile.Read(ref _available));
        return released;
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _trimTimer?.Dispose();
        _blocks.Clear();
    }

    private void Return(Block block)
    {
        if (!_disposed)
        {
            _blocks.Enqueue(block);
            Interlocked.Increment(ref _available);
        }
    }

    private sealed class Block(PinnedBlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => MemoryMarshal.CreateFromPinnedArray(_array, 0, _array.Length);

        public void Dispose() => pool.Return(this);
    }
}
