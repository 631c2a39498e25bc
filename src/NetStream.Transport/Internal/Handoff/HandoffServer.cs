using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// The old process's side of a handoff: a <c>SOCK_SEQPACKET</c> Unix socket at <see cref="HandoffOptions.Path"/>
/// (mode 0600, put in place with a rename so that it is never reachable with a wider mode) where a successor of the same
/// user asks for the listening sockets. One handoff at a time. Once the successor says it has started, the offered
/// listeners are released (no <c>shutdown</c>, which would stop the socket for the successor too; a Unix socket's file
/// stays) and <paramref name="stopApplication"/> stops this process, which drains its connections.
/// </summary>
internal sealed class HandoffServer(string path, TimeSpan timeout, ListenerRegistry listeners, HandoffDrain drain, Action stopApplication, ILogger logger, NetStreamMetrics metrics, CancellationToken stopping) : IAsyncDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stopping = new();
    private Task _serving = Task.CompletedTask;
    private int _busy;

    /// <summary>When a handoff completed (the successor started), as a <see cref="System.Diagnostics.Stopwatch"/> timestamp; 0 before.</summary>
    public long CompletedAt { get; private set; }

    public void Start()
    {
        var staging = $"{path}.{Environment.ProcessId}.new";
        File.Delete(staging);
        _socket.Bind(new UnixDomainSocketEndPoint(staging));
        File.SetUnixFileMode(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _socket.Listen(4);
        File.Move(staging, path, overwrite: true);
        _serving = ServeAsync();
        Log.HandoffListening(logger, path);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _serving.ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket peer;
            try
            {
                peer = await _socket.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Out of descriptors, say: said, and tried again after a pause, not spun on.
                Log.HandoffAborted(logger, -1, $"accepting a successor at {path} failed: {e.Message}");
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            // A peer that is not allowed, or a second successor while one is served, is answered at once.
            _ = Task.Run(() =>
            {
                try
                {
                    Serve(peer);
                }
                catch (Exception e)
                {
                    Log.HandoffAborted(logger, -1, e.Message);
                }
            });
        }
    }

    private void Serve(Socket peer)
    {
        using (peer)
        {
            var credentials = PeerCredentials.Read(peer);
            var uid = ProcessUser.Id;
            if (credentials is not { } known || (known.UserId != uid && known.UserId != 0))
            {
                Log.HandoffPeerRefused(logger, credentials?.UserId ?? -1, credentials?.ProcessId ?? -1, uid);
                metrics.Handoff("sent", "not_allowed");
                return;
            }

            if (stopping.IsCancellationRequested)
            {
                // Its listeners are being unbound: what it would send may be closed under the send.
                TryReceive(peer);
                TrySend(peer, new HandoffMessage { Error = "stopping: this process is shutting down" });
                metrics.Handoff("sent", "stopping");
                return;
            }

            if (Interlocked.Exchange(ref _busy, 1) != 0)
            {
                // Its hello read first: a socket closed with a message unread resets, and the answer would be lost.
                TryReceive(peer);
                TrySend(peer, new HandoffMessage { Error = "busy: a handoff to another process is under way" });
                Log.HandoffBusy(logger, known.ProcessId);
                metrics.Handoff("sent", "busy");
                return;
            }

            try
            {
                if (Handoff(peer, known.ProcessId))
                {
                    CompletedAt = System.Diagnostics.Stopwatch.GetTimestamp();
                    metrics.Handoff("sent");
                    // Accepting stopped already. The stop waits a moment: connections accepted just before send their
                    // first request, and keep-alive ones are answered with Connection: close (HandoffDrain), for a
                    // host's graceful stop closes connections that have no request in progress.
                    drain.Start();
                    _ = Task.Delay(HandoffDrain.Grace).ContinueWith(_ => stopApplication(), TaskScheduler.Default);
                }
                else
                {
                    metrics.Handoff("sent", "aborted");
                }
            }
            finally
            {
                Volatile.Write(ref _busy, 0);
            }
        }
    }

    /// <summary>Offers every listener, waits for the successor to start; true once it has.</summary>
    private bool Handoff(Socket peer, int successor)
    {
        try
        {
            peer.ReceiveTimeout = peer.SendTimeout = (int)Math.Min(timeout.TotalMilliseconds, int.MaxValue);
            var (hello, stray) = HandoffWire.Receive(peer);
            foreach (var descriptor in stray)
            {
                Descriptor.Close((ulong)descriptor);
            }

            if (hello?.Hello != HandoffMessage.Protocol)
            {
                throw new InvalidDataException($"it did not say {HandoffMessage.Protocol}");
            }

            var offered = listeners.Listeners.Where(l => !l.IsUnbound).ToList();
            HandoffWire.Send(peer, new HandoffMessage { Offer = [.. offered.Select(HandoffWire.Offer)] });
            foreach (var batch in offered.Chunk(ScmRights.MaxDescriptors))
            {
                var descriptors = batch.Select(l => (int)l.Socket.SafeHandle.DangerousGetHandle()).ToArray();
                HandoffWire.Send(peer, new HandoffMessage { Descriptors = descriptors.Length }, descriptors);
            }

            Log.HandoffOffered(logger, offered.Count, successor);

            // The successor has the sockets: from here its word, or its end (the socket closes when it exits), decides.
            // A time limit would leave both serving for good when a slow start outlasted it.
            peer.ReceiveTimeout = 0;
            var (answer, more) = HandoffWire.Receive(peer);
            foreach (var descriptor in more)
            {
                Descriptor.Close((ulong)descriptor);
            }

            if (answer?.Started != true)
            {
                throw new InvalidDataException(answer is null ? "it went away before it started" : "it did not say it started");
            }

            // From here the successor accepts: this process lets go of the sockets without shutting them down.
            foreach (var listener in offered)
            {
                listener.HandedOff();
            }

            Log.HandoffDone(logger, offered.Count, successor);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or SocketException or IOException or ObjectDisposedException)
        {
            Log.HandoffAborted(logger, successor, e.Message);
            return false;
        }
    }

    private void TryReceive(Socket peer)
    {
        try
        {
            peer.ReceiveTimeout = (int)Math.Min(timeout.TotalMilliseconds, int.MaxValue);
            foreach (var descriptor in HandoffWire.Receive(peer).Descriptors)
            {
                Descriptor.Close((ulong)descriptor);
            }
        }
        catch (Exception e) when (e is SocketException or InvalidDataException or IOException)
        {
            // Whatever it said: it is told the same.
        }
    }

    private static void TrySend(Socket peer, HandoffMessage message)
    {
        try
        {
            HandoffWire.Send(peer, message);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            // It is gone: nothing to tell.
        }
    }
}
