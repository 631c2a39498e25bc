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

    private const int AbortedWithFin = 1;
    private const int AbortedWithReset = 2;

    /// <summary>How long the close waits for the hooks to give back their slots before it sends the FIN or RST.</summary>
    private static readonly TimeSpan OutputDoneWait = TimeSpan.FromSeconds(1);

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
    private int _disposeStarted;
    private int _sendInFlight;
    private int _closeTimeoutArmed;
    private readonly int _minimumReceive;
    private readonly bool _corked;
    private readonly ILogger _logger;
    private readonly TcpInfoOnClose? _tcpInfoOnClose;
    private readonly CancellationTokenSource _closed = new();
    private long _lastActivity = Environment.TickCount64;
    private long _received;   // bytes, written by the receive loop only
    private long _preamble;   // of which the transport's own (a PROXY header), not the application's
    private int _preambleExpected;

    private ConnectionAbortedException? _abortReason;
    private int _aborted;   // 0, or how: AbortedWithFin, AbortedWithReset
    private CancellationTokenSource? _gone;   // made when first asked for: see ConnectionGone
    private bool _isGone;
    private bool _socketClosed;
    private Task _processing = Task.CompletedTask;
    private Exception? _sendFailure;
    private Action? _outputDoneCallback;
    private Task? _outputDone;   // set once the output is done: ends when what OnOutputDone registered has run
    private Task? _disposing;

    public NetStreamConnection(
        Socket socket,
        IConnectionEngine engine,
        MemoryPool<byte> pool,
        NetStreamTransportOptions options,
        ILogger logger,
        TcpInfoOnClose? tcpInfoOnClose = null)
    {
        _socket = socket;
        _tcpInfoOnClose = tcpInfoOnClose;
        _io = engine.Attach(socket, out var transportScheduler);
        var applicationScheduler = options.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
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
        var input = new Pipe(PipeOptionsFor(pool, options.MaxReadBufferSize, applicationScheduler, transportScheduler, minimumSegment));
        var output = new Pipe(PipeOptionsFor(pool, options.MaxWriteBufferSize, transportScheduler, applicationScheduler, minimumSegment));
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

    /// <summary>The engine's side of this connection.</summary>
    internal IConnectionIo Io => _io;

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

    /// <summary>
    /// Runs <paramref name="callback"/> once the output is done (all of it handed to the kernel, or failed, or
    /// aborted), just before the socket closes: what the hooks hold for the connection is given back before its peer
    /// sees the FIN or RST, and not before, so that a peer that does not read keeps counting against a limit. Runs at
    /// once if that moment has passed.
    /// </summary>
    internal void OnOutputDone(Action callback)
    {
        lock (_closed)
        {
            if (_outputDone is null)
            {
                _outputDoneCallback += callback;
                return;
            }
        }

        callback();
    }

    public override void Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application."));

    /// <summary>
    /// Ends the connection: RST, unless <paramref name="abortReason"/> is <see langword="null"/>, which is Kestrel's way
    /// of closing a connection whose peer sent FIN: then FIN, as Kestrel's Sockets transport does. At once, unless the
    /// hooks are waiting for the output to give back their slots (the application is done): then just after that.
    /// </summary>
    public override void Abort(ConnectionAbortedException abortReason) =>
        EndConnection(abortReason ?? new ConnectionAbortedException("The connection was closed."), reset: abortReason is not null);

    private void EndConnection(ConnectionAbortedException reason, bool reset)
    {
        if (Interlocked.CompareExchange(ref _aborted, reset ? AbortedWithReset : AbortedWithFin, 0) != 0)
        {
            return;
        }

        _abortReason = reason;
        Log.ConnectionAborted(_logger, ConnectionId, _abortReason.Message);

        // Nothing more goes out: the hooks give back their slots before the peer sees the close, as on a graceful
        // close, so that its next connect finds them free (a handler that failed is aborted after its hooks ended).
        var outputDone = EndOutput();
        if (outputDone.IsCompleted)
        {
            CloseSocket(reset);
        }
        else
        {
            _ = CloseSocketAfterAsync(outputDone, reset);
        }

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

        // What the application wrote last may wait for a peer that does not read: not for ever. Timed only while a
        // send waits (here, or in the send loop once it sees this): most closes end at once, and a timer per close
        // costs the churn of short connections a few percent.
        Interlocked.Exchange(ref _disposeStarted, 1);
        if (Volatile.Read(ref _sendInFlight) != 0)
        {
            ArmCloseTimeout();
        }

        await _processing.ConfigureAwait(false);
    }

    /// <summary>Aborts the connection if it is not over within the close timeout (once; from a close that waits on a send).</summary>
    private void ArmCloseTimeout()
    {
        if (_closeTimeout != Timeout.InfiniteTimeSpan && Interlocked.Exchange(ref _closeTimeoutArmed, 1) == 0)
        {
            _ = AbortUnlessOverAsync();
        }
    }

    private async Task AbortUnlessOverAsync()
    {
        try
        {
            await _processing.WaitAsync(_closeTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort(new ConnectionAbortedException(CloseTimedOut));
        }
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

    private void CancelConnectionClosed()
    {
        try
        {
            _closed.Cancel();
        }
        catch (AggregateException e)
        {
            // The application's callback failed; on a pool thread that would end the process, and so would a logger
            // that a stopping host has disposed already.
            try
            {
                Log.ConnectionClosedCallbackFailed(_logger, ConnectionId, e);
            }
            catch (ObjectDisposedException)
            {
                // Nobody is left to tell.
            }
        }
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
