using Microsoft.AspNetCore.Connections;

namespace NetStream.Hosting.Internal;

/// <summary>
/// The connection limits (<c>MaxConnections</c>, of the server and of each endpoint): at a limit an endpoint stops
/// accepting, and the kernel's backlog holds new peers until a slot frees.
/// </summary>
internal sealed partial class NetStreamServer
{
    /// <summary>
    /// At a limit, waits until a connection could be served: the kernel's backlog holds new peers meanwhile. Takes the
    /// endpoint's own slot, but only looks at the server's: an idle endpoint must not hold a slot of the whole
    /// server while it waits for a peer. <see langword="false"/> once stopping.
    /// </summary>
    private async Task<bool> WaitForRoomAsync(Endpoint endpoint)
    {
        try
        {
            if (endpoint.Slots is { } own)
            {
                await own.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        if (!await TakeTotalSlotAsync().ConfigureAwait(false))
        {
            endpoint.Slots?.Release();
            return false;
        }

        _totalSlots?.Release();
        return true;
    }

    /// <summary>
    /// Takes a slot of the server's for an accepted connection. Another endpoint may have taken the last one since
    /// <see cref="WaitForRoomAsync"/>: the connection then waits for one, as it would have in the backlog.
    /// <see langword="false"/> once stopping.
    /// </summary>
    private async Task<bool> TakeTotalSlotAsync()
    {
        try
        {
            if (_totalSlots is { } total)
            {
                await total.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task CloseUnservedAsync(Endpoint endpoint, ConnectionContext connection)
    {
        try
        {
            connection.Abort(new ConnectionAbortedException("The server is stopping."));
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            HostingLog.DisposeFailed(logger, connection.ConnectionId, endpoint.Name, e);
        }
    }

    private void ReleaseSlots(Endpoint endpoint)
    {
        endpoint.Slots?.Release();
        _totalSlots?.Release();
    }
}
