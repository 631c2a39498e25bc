using System.Diagnostics;
using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>How the connection's socket is closed: FIN or RST, unread input dropped first, lingering without a thread.</summary>
internal sealed partial class NetStreamConnection
{
    private void CloseSocket(bool reset)
    {
        lock (_socket)
        {
            if (_socketClosed)
            {
                return;
            }

            _socketClosed = true;
            _tcpInfoOnClose?.Record(_socket);
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
            _io.Close();
            DescriptorHeadroom.Process.Closed();
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
        catch (SocketException)
        {
            // The send queue cannot be read: closed in the background, as without the option (the kernel's linger
            // would block this thread, or reset a connection that may still deliver).
            TryClearLinger();
        }
        catch (ObjectDisposedException)
        {
            // Nothing is left to wait for.
        }
        finally
        {
            _io.Close();
            DescriptorHeadroom.Process.Closed();
        }
    }

    private void TryClearLinger()
    {
        try
        {
            _socket.LingerState = new LingerOption(false, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Gone already.
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
}
