using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// Fixed-size blocks allocated on the pinned object heap and reused, so the socket can read and write
/// straight into pipe memory without pinning on every call. Used when the host registers no
/// <see cref="Microsoft.AspNetCore.Connections.IMemoryPoolFactory{T}"/> (Kestrel registers one).
/// </summary>
internal sealed class PinnedBlockMemoryPool : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _blocks = new();
    private bool _disposed;

    public override int MaxBufferSize => BlockSize;

    /// <summary>A block; after <see cref="MemoryPool{T}.Dispose()"/> still one, but not kept for reuse once returned,
    /// so that connections that outlive their listener go on working.</summary>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            // Pipes never ask for more than MaxBufferSize; someone else might.
            return MemoryPool<byte>.Shared.Rent(minBufferSize);
        }

        return _blocks.TryDequeue(out var block) ? block : new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _blocks.Clear();
    }

    private void Return(Block block)
    {
        if (!_disposed)
        {
            _blocks.Enqueue(block);
        }
    }

    private sealed class Block(PinnedBlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => MemoryMarshal.CreateFromPinnedArray(_array, 0, _array.Length);

        public void Dispose() => pool.Return(this);
    }
}
