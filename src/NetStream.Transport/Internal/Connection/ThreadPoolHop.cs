using System.Runtime.CompilerServices;

namespace NetStream.Transport.Internal;

/// <summary>
/// <c>await ThreadPoolHop.Instance</c> continues on a thread-pool thread: unlike <c>Task.Yield</c>, whatever
/// SynchronizationContext or TaskScheduler the awaiting code started under (the thread that called AcceptAsync may
/// have one) is ignored, so the connection never depends on it being pumped.
/// </summary>
internal readonly struct ThreadPoolHop : ICriticalNotifyCompletion
{
    public static ThreadPoolHop Instance => default;

    public bool IsCompleted => false;

    public ThreadPoolHop GetAwaiter() => this;

    public void GetResult()
    {
    }

    public void OnCompleted(Action continuation) =>
        ThreadPool.QueueUserWorkItem(static continuation => continuation(), continuation, preferLocal: false);

    public void UnsafeOnCompleted(Action continuation) =>
        ThreadPool.UnsafeQueueUserWorkItem(static continuation => continuation(), continuation, preferLocal: false);
}
