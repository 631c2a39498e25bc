using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal;

/// <summary>
/// NetStream's connection: a socket between two pipes. The receive loop fills the input pipe and pauses when
/// it is full; the send loop drains the output pipe. A graceful end of output sends FIN after the last byte and
/// closes the socket; an abort or error sends RST. <see cref="ConnectionClosed"/> fires when the receive side ends
/// (the peer's FIN, a reset, our close), as on Kestrel's Sockets transport: that is how Kestrel notices a client gone.
/// </summary>
internal sealed partial class NetStreamConnection : ConnectionContext
{
    /// <summary>The most unread input a graceful close reads and discards (see <see cref="DiscardUnreadInput"/>).</summary>
    private const int MaxDiscardedOnClose = 1024 * 1024;

    private const string OutputCompleted = "The connection's output was completed, which closed the connection.";

    private const string CloseTimedOut = "The peer did not take the connection's last output within the close timeout (NetStream:CloseTimeout, or Linger when set).";

    /// <summary>
    /// The least room a receive is given (half a 4 KiB block, as Kestrel's Sockets transport): the few bytes left at a
    /// block's end would take a receive call of their own.
    /// </summary>
    private const int MinimumReceive = 2048;

    /// <summary>The longest pause between two looks at a lingering close's send queue.</summary>
    private static readonly TimeSpan MaxLingerPoll = TimeSpan.FromMilliseconds(200);

    private readonly Socket _socket;
    private readonly IConnectionIo _io;
    private readonly IDuplexPipe _originalTransport;
    private readonly PipeReader _output;   // what the application wrote, read by the send loop
    private readonly PipeWriter _input;    // what the peer sent, written by the receive loop
    private readonly bool _waitForData;
    private readonly TimeSpan? _linger;
    private readonly TimeSpan _closeTimeout;
    private long _closeStarted;
    private readonly int _minimumReceive;
    private readonly bool _corked;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closed = new();
    private readonly TaskCompletionSource _closedCallbacksRan = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ConnectionAbortedException? _abortReason;
    private int _aborted;
    private int _closedFired;
    private CancellationTokenSource? _gone;   // made when first asked for: see ConnectionGone
    private bool _isGone;
    private bool _socketClosed;
    private Task _processing = Task.CompletedTask;
    private Exception? _sendFailure;
    private Task? _disposing;

    public NetStreamConnection(
        Socket socket,
        MemoryPool<byte> pool,
        PipeScheduler transportScheduler,
        SocketOperationPool sendOperations,
        NetStreamTransportOptions options,
        ILogger logger)
    {
        _socket = socket;
        _io = new SocketsConnectionIo(socket, sendOperations);
        _waitForData = options.WaitForDataBeforeAllocatingBuffer;
        _linger = options.Linger > TimeSpan.Zero && socket.ProtocolType == ProtocolType.Tcp ? options.Linger : null;
        _closeTimeout = _linger ?? options.CloseTimeout;
        _corked = options.Cork && socket.ProtocolType == ProtocolType.Tcp;
        _logger = logger;
        MemoryPool = pool;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;

        var minimumSegment = pool.MaxBufferSize is > 0 and < 4096 ? pool.MaxBufferSize : 4096;
        _minimumReceive = Math.Min(MinimumReceive, minimumSegment);
        var input = new Pipe(PipeOptionsFor(pool, options.MaxReadBufferSize, PipeScheduler.ThreadPool, transportScheduler, minimumSegment));
        var output = new Pipe(PipeOptionsFor(pool, options.MaxWriteBufferSize, transportScheduler, PipeScheduler.ThreadPool, minimumSegment));
        _input = input.Writer;
        _output = output.Reader;
        _originalTransport = new DuplexPipe(input.Reader, output.Writer);
        Transport = _originalTransport;
        Features = new ConnectionFeatures(this);
        ConnectionClosed = _closed.Token;
    }

    public override IDuplexPipe Transport { get; set; }

    public override IFeatureCollection Features { get; }

    public override CancellationToken ConnectionClosed { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    internal Socket Socket => _socket;

    /// <summary>
    /// Cancelled when the connection is over for good: reset, failed, aborted or closed by us. Unlike
    /// <see cref="ConnectionClosed"/>, not at the peer's FIN, after which a half-closed peer may still be served.
    /// </summary>
    internal CancellationToken ConnectionGone
    {
        get
        {
            lock (_closed)
            {
                if (_isGone)
                {
                    return new CancellationToken(canceled: true);
                }

                _gone ??= new CancellationTokenSource();
                return _gone.Token;
            }
        }
    }

    /// <summary>Starts the receive and send loops. Called once, before the connection is handed out.</summary>
    internal void Start() => _processing = RunAsync();

    /// <summary>Completes when both loops have ended: the connection is over, whatever its socket still lingers on.</summary>
    internal Task Finished => _processing;

    public override void Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application."));

    /// <summary>
    /// Ends the connection at once: RST, unless <paramref name="abortReason"/> is <see langword="null"/>, which is
    /// Kestrel's way of closing a connection whose peer sent FIN: then FIN, as Kestrel's Sockets transport does.
    /// </summary>
    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return;
        }

        _abortReason = abortReason ?? new ConnectionAbortedException("The connection was closed.");
        Log.ConnectionAborted(_logger, ConnectionId, _abortReason.Message);
        CloseSocket(reset: abortReason is not null);

        // Both loops may be parked: the send loop on an empty output, the receive loop on a full input.
        _output.CancelPendingRead();
        _input.CancelPendingFlush();
    }

    public override ValueTask DisposeAsync()
    {
        // Idempotent: Kestrel's connection limit disposes a refused connection and then disposes it again.
        lock (_closed)
        {
            _disposing ??= DisposeCoreAsync();
        }

        return new ValueTask(_disposing);
    }

    private async Task DisposeCoreAsync()
    {
        Interlocked.CompareExchange(ref _closeStarted, Stopwatch.GetTimestamp(), 0);
        await _originalTransport.Input.CompleteAsync().ConfigureAwait(false);
        await _originalTransport.Output.CompleteAsync().ConfigureAwait(false);
        if (!_processing.IsCompleted && _closeTimeout != Timeout.InfiniteTimeSpan)
        {
            // What the application wrote last may still wait for a peer that does not read: not for ever.
            try
            {
                await _processing.WaitAsync(_closeTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Abort(new ConnectionAbortedException(CloseTimedOut));
            }
        }

        await _processing.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        try
        {
            var receiving = ReceiveLoopAsync();
            var sending = SendLoopAsync();
            try
            {
                await receiving.ConfigureAwait(false);
            }
            finally
            {
                // Even if the receive loop failed: the I/O is disposed below, and a send may still be in flight.
                await sending.ConfigureAwait(false);
            }
        }
        finally
        {
            _io.Dispose();
            FireConnectionClosed();

            // As Kestrel's Sockets transport: disposing ends after the ConnectionClosed callbacks, so that their cleanup
            // is over before a stopping host disposes what they use.
            await _closedCallbacksRan.Task.ConfigureAwait(false);
        }
    }

    private void MarkGone()
    {
        CancellationTokenSource? gone;
        lock (_closed)
        {
            if (_isGone)
            {
                return;
            }

            _isGone = true;
            gone = _gone;
        }

        if (gone is not null)
        {
            // Never inline, as ConnectionClosed.
            ThreadPool.UnsafeQueueUserWorkItem(static gone => gone.Cancel(), gone, preferLocal: false);
        }
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) == 0)
        {
            // Never inline: ConnectionClosed callbacks must not run on the I/O thread that ended a loop.
            ThreadPool.UnsafeQueueUserWorkItem(static connection => connection.CancelConnectionClosed(), this, preferLocal: false);
        }
    }

    private void CancelConnectionClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (AggregateException e)
        {
            // The application's callback failed; on a pool thread that would end the process.
            Log.ConnectionClosedCallbackFailed(_logger, ConnectionId, e);
        }
        finally
        {
            _closedCallbacksRan.SetResult();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        var fin = false;
        try
        {
            // Stops before calling into a socket that our own close already disposed (which would throw).
            while (!Volatile.Read(ref _socketClosed))
            {
                if (_waitForData)
                {
                    var ready = await _io.WaitForDataAsync().ConfigureAwait(false);
                    if (!ready.Succeeded)
                    {
                        error = Classify(ready.Error);
                        break;
                    }

                    if (Volatile.Read(ref _socketClosed))
                    {
                        break;
                    }
                }

                var received = await _io.ReceiveAsync(_input.GetMemory(_minimumReceive)).ConfigureAwait(false);
                if (!received.Succeeded)
                {
                    error = Classify(received.Error);
                    break;
                }

                if (received.Bytes == 0 && Volatile.Read(ref _socketClosed))
                {
                    // Our own close ended the receive (a lingering close shuts it down), not the peer.
                    break;
                }

                if (received.Bytes == 0)
                {
                    // Checked here: the argument would format the lazily made connection id on every FIN.
                    if (_logger.IsEnabled(LogLevel.Debug))
                    {
                        Log.ConnectionFin(_logger, ConnectionId);
                    }

                    fin = true;
                    break;
                }

                _input.Advance(received.Bytes);
                var flush = await _input.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            error = Classify(e);
        }
        finally
        {
            // Ended by our own graceful close, the input tells so rather than look like the peer's FIN.
            var closedByUs = !fin && error is null && Volatile.Read(ref _socketClosed);
            // One exception per connection, as it may be thrown on several threads.
            await _input.CompleteAsync(_abortReason ?? error ?? Volatile.Read(ref _sendFailure) ?? (closedByUs ? new ConnectionAbortedException(OutputCompleted) : null)).ConfigureAwait(false);
            if (!fin)
            {
                MarkGone();
            }

            FireConnectionClosed();
        }
    }

    private async Task SendLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                var buffer = result.Buffer;
                if (!buffer.IsEmpty)
                {
                    var sent = await _io.SendAsync(buffer).ConfigureAwait(false);
                    _io.SendCompleted();
                    if (!sent.Succeeded)
                    {
                        error = Classify(sent.Error);
                        break;
                    }

                    if (_corked)
                    {
                        PushCorkedFrame();
                    }
                }

                _output.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
        {
            error = Classify(e);
        }
        finally
        {
            // Output done: FIN if it ended well, RST otherwise (an abort has closed the socket already, as it chose).
            // Closing also ends a pending receive, and one parked on a full input is woken; the input then tells why.
            Volatile.Write(ref _sendFailure, error);
            CloseSocket(reset: error is not null || Volatile.Read(ref _aborted) != 0);

            // A writer learns of a reset or an abort as Kestrel's Sockets transport tells it, by a completed flush, not an
            // exception (Kestrel would log one as unexpected on every client that goes away mid-response); the input
            // carries the reason. Only a failure nobody expects reaches the writer.
            await _output.CompleteAsync(error is ConnectionResetException ? null : error).ConfigureAwait(false);
            _input.CancelPendingFlush();
        }
    }

    /// <summary>
    /// With TCP_CORK the kernel holds a partial frame back for up to 200 ms, waiting for more: all that was flushed is
    /// sent now, so uncorking pushes it out, and corking again gathers the next flush's writes into full frames.
    /// </summary>
    private void PushCorkedFrame()
    {
        try
        {
            _socket.SetRawSocketOption(SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpCork, [0, 0, 0, 0]);
            _socket.SetRawSocketOption(SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpCork, [1, 0, 0, 0]);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Closing meanwhile: the next send, if any, finds out.
        }
    }

    private void CloseSocket(bool reset)
    {
        lock (_socket)
        {
            if (_socketClosed)
            {
                return;
            }

            _socketClosed = true;
            try
            {
                if (reset)
                {
                    _socket.LingerState = new LingerOption(true, 0);
                }
                else
                {
                    _socket.Shutdown(SocketShutdown.Send);
                    DiscardUnreadInput();
                    if (_linger is not null)
                    {
                        // Open while it lingers: this ends a receive that waits on it, as closing it would.
                        _socket.Shutdown(SocketShutdown.Receive);
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // The peer may already be gone, or a failing new_connection hook closed the socket itself; closing is
                // all that is left to do.
            }
        }

        MarkGone();

        if (_linger is { } linger && !reset)
        {
            _ = LingerThenCloseAsync(linger);
        }
        else
        {
            _socket.Dispose();
        }
    }

    /// <summary>
    /// SO_LINGER's graceful close without a blocked thread: close(2) with the option set would block until the peer
    /// has acknowledged all that was sent, and a peer that does not read would hold a thread for the whole linger time
    /// (peers choose how many). Waits for that here instead, without a thread; past the time the connection is reset,
    /// as the option promises, and the unsent bytes are dropped.
    /// </summary>
    private async Task LingerThenCloseAsync(TimeSpan linger)
    {
        // The linger time counts from the start of the close, which may have waited for the output to drain already.
        Interlocked.CompareExchange(ref _closeStarted, Stopwatch.GetTimestamp(), 0);
        var started = Volatile.Read(ref _closeStarted);
        var poll = TimeSpan.FromMilliseconds(5);
        try
        {
            // A peer that reset leaves what it never acknowledged counted for good: its error ends the wait.
            while (SendQueue.Unacknowledged(_socket) > 0 && _socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is 0)
            {
                var left = linger - Stopwatch.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    _socket.LingerState = new LingerOption(true, 0);
                    return;
                }

                await Task.Delay(poll < left ? poll : left).ConfigureAwait(false);
                poll = TimeSpan.FromTicks(Math.Min(poll.Ticks * 2, MaxLingerPoll.Ticks));
            }

            // All acknowledged: closing has nothing left to wait for, and must not start waiting on a retransmit.
            _socket.LingerState = new LingerOption(false, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Nothing is left to wait for.
        }
        finally
        {
            _socket.Dispose();
        }
    }

    /// <summary>
    /// Reads and drops input nobody will read, without waiting: closing a socket that holds unread input makes the
    /// kernel reset the connection at once, and the peer then loses what we sent that it has not read yet.
    /// </summary>
    private void DiscardUnreadInput()
    {
        // Asked even while the receive loop waits in a receive: a completed wait leaves the bytes in the kernel
        // until the loop's next receive runs.
        if (_socket.Available == 0)
        {
            return;
        }

        // Never waits: a receive the loop has pending may take the bytes first.
        _socket.Blocking = false;
        Span<byte> sink = stackalloc byte[4096];
        for (var discarded = 0; discarded < MaxDiscardedOnClose;)
        {
            var read = _socket.Receive(sink, SocketFlags.None, out var error);
            if (error != SocketError.Success || read == 0)
            {
                return;
            }

            discarded += read;
        }
    }

    /// <summary>What the application sees of a failed operation; <see langword="null"/> if our own close ended it.</summary>
    private Exception? Classify(SocketError error)
    {
        if (Volatile.Read(ref _aborted) != 0 || _socketClosed)
        {
            // The abort reason (if any) is what the application sees.
            return null;
        }

        var socketError = new SocketException((int)error);
        if (error is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted)
        {
            Log.ConnectionReset(_logger, ConnectionId);
            return new ConnectionResetException(socketError.Message, socketError);
        }

        Log.ConnectionError(_logger, ConnectionId, socketError);
        return new IOException(socketError.Message, socketError);
    }

    /// <summary>The same for an exception thrown where no error value was possible (e.g. a socket disposed under a call).</summary>
    private Exception? Classify(Exception e)
    {
        if (e is SocketException socketError)
        {
            return Classify(socketError.SocketErrorCode);
        }

        if (Volatile.Read(ref _aborted) != 0 || _socketClosed)
        {
            return null;
        }

        Log.ConnectionError(_logger, ConnectionId, e);
        return new IOException(e.Message, e);
    }

    private static PipeOptions PipeOptionsFor(
        MemoryPool<byte> pool, long? limit, PipeScheduler readerScheduler, PipeScheduler writerScheduler, int minimumSegment)
    {
        var pause = limit is > 0 ? limit.Value : 0;
        return new PipeOptions(
            pool,
            readerScheduler,
            writerScheduler,
            pauseWriterThreshold: pause,
            resumeWriterThreshold: pause / 2,
            minimumSegmentSize: minimumSegment,
            useSynchronizationContext: false);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
