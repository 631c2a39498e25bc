using System.Threading.Tasks.Sources;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// A receive or send that waits for readiness: one per direction per connection, reused for every wait, completed
/// on the loop thread, where the awaiting loop goes on inline.
/// </summary>
internal sealed class EpollOperation : IValueTaskSource<IoResult>
{
    private ManualResetValueTaskSourceCore<IoResult> _core;

    /// <summary>The current wait, for its awaiter.</summary>
    public ValueTask<IoResult> Pending => new(this, _core.Version);

    /// <summary>Readies the operation for a new wait (the last one's result has been read).</summary>
    public void Start() => _core.Reset();

    public void Complete(IoResult result) => _core.SetResult(result);

    public IoResult GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
