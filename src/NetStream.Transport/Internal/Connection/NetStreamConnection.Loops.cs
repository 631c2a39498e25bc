using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal;

/// <summary>The connection's two loops: socket to input pipe, output pipe to socket; and what their failures mean.</summary>
internal sealed partial class NetStreamConnection
{
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
                _lastActivity = Environment.TickCount64;
                Volatile.Write(ref _received, _received + received.Bytes);
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
            // Why the input ended, as the application's reads see it: an abort's reason, this loop's failure, the send
            // loop's (a reset seen on a send), or, ended by our own graceful close, that rather than the peer's FIN.
            var closedByUs = !fin && error is null && Volatile.Read(ref _socketClosed);
            var ending = _abortReason ?? error ?? Volatile.Read(ref _sendFailure) ?? (closedByUs ? new ConnectionAbortedException(OutputCompleted) : null);
            await _input.CompleteAsync(ending).ConfigureAwait(false);
            if (!fin)
            {
                MarkGone();
            }

            // ConnectionClosed's callbacks are the application's: on a pool thread, never on the I/O thread that ended
            // this loop. And the loop ends after them, so that disposing the connection, which waits for the loop, ends
            // after them too, as on Kestrel's Sockets transport: their cleanup is over before a stopping host disposes
            // what they use.
            await ThreadPoolHop.Instance;
            CancelConnectionClosed();
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
                    // Paired with DisposeCoreAsync (full fences on both sides): a send that waits while the connection
                    // is being disposed is timed by one of the two.
                    Interlocked.Exchange(ref _sendInFlight, 1);
                    var sending = _io.SendAsync(buffer);
                    if (!sending.IsCompleted && Volatile.Read(ref _disposeStarted) != 0)
                    {
                        ArmCloseTimeout();
                    }

                    var sent = await sending.ConfigureAwait(false);
                    Volatile.Write(ref _sendInFlight, 0);
                    _io.SendCompleted();
                    _lastActivity = Environment.TickCount64;
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
            // Output done: FIN if it ended well, RST if it failed; an abort's own choice if it came first (it may wait
            // for the hooks' slots, as this does). Closing also ends a pending receive, and one parked on a full input
            // is woken; the input then tells why.
            Volatile.Write(ref _sendFailure, error);
            await EndOutput().ConfigureAwait(false);
            CloseSocket(reset: error is not null || Volatile.Read(ref _aborted) == AbortedWithReset);

            // A writer learns of a reset or an abort as Kestrel's Sockets transport tells it, by a completed flush, not an
            // exception (Kestrel would log one as unexpected on every client that goes away mid-response); the input
            // carries the reason. Only a failure nobody expects reaches the writer.
            await _output.CompleteAsync(error is ConnectionResetException ? null : error).ConfigureAwait(false);
            _input.CancelPendingFlush();
        }
    }

    /// <summary>
    /// Marks the output done, once, and runs what <see cref="OnOutputDone"/> registered (the hooks give back their
    /// slots) on the thread pool, not on the I/O queue the caller may run on, which other connections share. The task
    /// ends when that has run, or when a callback that blocks has run for a short while: the socket closes after it, so
    /// that the slots are back before the peer sees the FIN or RST.
    /// </summary>
    private Task EndOutput()
    {
        Action? callback;
        lock (_closed)
        {
            if (_outputDone is { } started)
            {
                return started;
            }

            callback = _outputDoneCallback;
            _outputDoneCallback = null;
            _outputDone = callback is null ? Task.CompletedTask : RunOutputDoneCallbackAsync(callback);
            return _outputDone;
        }
    }

    private static async Task RunOutputDoneCallbackAsync(Action callback)
    {
        // The wait is capped for a callback that blocks, not for a busy thread pool: it counts from the callback's
        // start, so that slots are back before the peer sees the close however long the pool took to get to it.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = Task.Run(() =>
        {
            started.SetResult();
            callback();
        });

        try
        {
            await started.Task.ConfigureAwait(false);
            await running.WaitAsync(OutputDoneWait).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A slow or failing callback of the application's: the close goes on without it (the chain logs failures).
        }
    }

    private async Task CloseSocketAfterAsync(Task outputDone, bool reset)
    {
        await outputDone.ConfigureAwait(false);
        CloseSocket(reset);
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
}
