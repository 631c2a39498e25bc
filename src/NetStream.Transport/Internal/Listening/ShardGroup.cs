using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Internal;

/// <summary>
/// <see cref="NetStreamTransportOptions.AcceptShards"/>: several listeners on one TCP endpoint in an <c>SO_REUSEPORT</c>
/// group. The kernel spreads new connections over their sockets; each shard accepts on its own (with the epoll engine,
/// each on its own loop) with all of a listener's rules (errors by errno, back-off, the descriptor reserve), and the
/// connections come out of one queue. The queue holds at most one connection per shard: past that a shard waits, and
/// the kernel's backlog holds the rest, as with one listener.
/// </summary>
internal sealed class ShardGroup : IConnectionListener
{
    private readonly NetStreamListener[] _shards;
    private readonly Channel<ConnectionContext> _accepted;
    private readonly CancellationTokenSource _unbinding = new();
    private readonly Task _pumps;

    public ShardGroup(NetStreamListener[] shards)
    {
        _shards = shards;
        _accepted = Channel.CreateBounded<ConnectionContext>(new BoundedChannelOptions(shards.Length)
        {
            SingleWriter = false,
            SingleReader = false,
        });
        _pumps = PumpAllAsync();
    }

    public EndPoint EndPoint => _shards[0].EndPoint;

    /// <summary>The group's listeners, one per socket.</summary>
    public IReadOnlyList<NetStreamListener> Shards => _shards;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null; // every shard is unbound
        }
    }

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        foreach (var shard in _shards)
        {
            await shard.UnbindAsync(cancellationToken).ConfigureAwait(false);
        }

        // A shard that waits for room in the full queue gives up its connection instead.
        await _unbinding.CancelAsync().ConfigureAwait(false);
        try
        {
            await _pumps.ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Already handed to AcceptAsync's caller through the queue.
        }

        // Accepted, never handed out: closed as the kernel would close what waited in its backlog.
        while (_accepted.Reader.TryRead(out var unserved))
        {
            unserved.Abort(new ConnectionAbortedException("The listener was unbound before the connection was served."));
            await unserved.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await UnbindAsync().ConfigureAwait(false);
        foreach (var shard in _shards)
        {
            await shard.DisposeAsync().ConfigureAwait(false);
        }

        _unbinding.Dispose();
    }

    private async Task PumpAllAsync()
    {
        try
        {
            await Task.WhenAll(_shards.Select(PumpAsync)).ConfigureAwait(false);
            _accepted.Writer.TryComplete();
        }
        catch (Exception e)
        {
            // A listener turns every error of an accept into a retry; should one still throw, the caller of AcceptAsync sees it.
            _accepted.Writer.TryComplete(e);
            throw;
        }
    }

    private async Task PumpAsync(NetStreamListener shard)
    {
        await Task.Yield();
        while (await shard.AcceptAsync().ConfigureAwait(false) is { } connection)
        {
            try
            {
                await _accepted.Writer.WriteAsync(connection, _unbinding.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                return;
            }
        }
    }
}
