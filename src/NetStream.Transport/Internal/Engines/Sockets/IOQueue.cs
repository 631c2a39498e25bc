using System.Collections.Concurrent;
using System.IO.Pipelines;

namespace NetStream.Transport.Internal.Engines.Sockets;

/// <summary>
/// A <see cref="PipeScheduler"/> that batches the transport's continuations into one thread-pool work item,
/// so a burst of socket completions costs one dispatch instead of one each.
/// </summary>
internal sealed class IOQueue : PipeScheduler, IThreadPoolWorkItem
{
    private readonly ConcurrentQueue<Work> _work = new();
    private int _scheduled;

    public override void Schedule(Action<object?> action, object? state)
    {
        _work.Enqueue(new Work(action, state));

        // One work item drains the queue; only the first enqueue after it went idle starts a new one.
        if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
        {
            System.Threading.ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute()
    {
        while (true)
        {
            while (_work.TryDequeue(out var work))
            {
                work.Callback(work.State);
            }

            Volatile.Write(ref _scheduled, 0);

            // Work enqueued between the last dequeue and the reset would otherwise wait for the next Schedule.
            if (_work.IsEmpty || Interlocked.CompareExchange(ref _scheduled, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private readonly record struct Work(Action<object?> Callback, object? State);
}
