using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NetStream.Transport.Internal;

namespace NetStream.Hosting.Internal;

/// <summary>
/// systemd's service notifications (<c>sd_notify(3)</c>) for <c>Type=notify</c> units, sent when <c>NOTIFY_SOCKET</c>
/// is set: <c>READY=1</c> once the host has started (every endpoint bound, Kestrel's too), <c>STOPPING=1</c> when it
/// stops; and, when the unit keeps a file descriptor store (<c>FileDescriptorStoreMax=</c>, which systemd 254 and later
/// announce in <c>$FDSTORE</c>), each hosted endpoint's listening socket put into it (<c>FDSTORE=1</c>,
/// <c>FDNAME=</c> the endpoint's name), so that <c>systemctl restart</c> passes it to the next process
/// (<c>LISTEN_FDS</c>, <c>LISTEN_FDNAMES</c>), whose endpoint of that name takes it: no connection is refused between
/// the two processes.
/// </summary>
internal sealed class SystemdNotify(NetStreamServer server, IHostApplicationLifetime lifetime, ILogger<SystemdNotify> logger) : IHostedService, IDisposable
{
    private Socket? _socket;
    private CancellationTokenRegistration _started;
    private CancellationTokenRegistration _stopping;

    /// <summary>The store's size systemd announced (<c>$FDSTORE</c>); 0 when the unit has none.</summary>
    internal static int StoreSize => int.TryParse(Environment.GetEnvironmentVariable("FDSTORE"), NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? size : 0;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is not { Length: > 0 } path)
        {
            return Task.CompletedTask;
        }

        try
        {
            // '@' names a socket in the abstract namespace.
            var endPoint = new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path);
            _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            _socket.Connect(endPoint);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            // ArgumentException: a path longer than a Unix socket's address holds.
            HostingLog.SystemdNotifyFailed(logger, path, e.Message);
            _socket?.Dispose();
            _socket = null;
            return Task.CompletedTask;
        }

        _started = lifetime.ApplicationStarted.Register(Started);
        _stopping = lifetime.ApplicationStopping.Register(() => Send("STOPPING=1"));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _started.Dispose();
        _stopping.Dispose();
        _socket?.Dispose();
    }

    private void Started()
    {
        var stored = 0;
        if (StoreSize > 0)
        {
            foreach (var (descriptor, name) in server.StaleStored)
            {
                // Stored for an endpoint that is gone or moved: out of the store, and closed here, or it listens on.
                Send($"FDSTOREREMOVE=1\nFDNAME={name}");
                Descriptor.Close((ulong)descriptor);
                HostingLog.StoredSocketRemoved(logger, name);
            }

            foreach (var (name, listener) in server.StorableListeners)
            {
                if (stored == StoreSize)
                {
                    HostingLog.SystemdStoreFull(logger, StoreSize, name);
                    break;
                }

                if (Store(name, listener.Socket))
                {
                    stored++;
                }
            }
        }

        Send($"READY=1\nSTATUS=NetStream: {server.BoundEndPoints.Count} endpoints serving, {stored} listening sockets put into systemd's store");
    }

    private bool Store(string name, Socket listener)
    {
        try
        {
            ScmRights.Send(_socket!, Encoding.UTF8.GetBytes($"FDSTORE=1\nFDNAME={name}"), [(int)listener.SafeHandle.DangerousGetHandle()]);
            HostingLog.SystemdStored(logger, name);
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            HostingLog.SystemdNotifyFailed(logger, Environment.GetEnvironmentVariable("NOTIFY_SOCKET") ?? string.Empty, e.Message);
            return false;
        }
    }

    private void Send(string state)
    {
        try
        {
            _socket?.Send(Encoding.UTF8.GetBytes(state));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            HostingLog.SystemdNotifyFailed(logger, Environment.GetEnvironmentVariable("NOTIFY_SOCKET") ?? string.Empty, e.Message);
        }
    }
}
