using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// A restart is how a changed configuration takes effect, so a socket taken over from the old process gets this
/// process's settings where a listening socket can still change them: its backlog (<c>listen(2)</c> again),
/// <c>TCP_DEFER_ACCEPT</c> and <c>TCP_FASTOPEN</c>. What was fixed at bind (<c>SO_REUSEPORT</c>) stays as it was, and
/// a warning says so. Each change is logged against what the old process said the socket was bound with.
/// </summary>
internal static class HandedOverSettings
{
    public static ListenSocket.Bound Apply(ListenSocket.Bound bound, OfferedSocket offered, NetStreamTransportOptions options, ILogger logger)
    {
        var socket = bound.Socket;
        var address = $"{offered.Kind} {offered.Address}";
        var was = offered.Bound;

        var backlog = options.Backlog ?? Somaxconn.Value;
        if (was?.Backlog != backlog)
        {
            socket.Listen(backlog);
            Log.HandoffSettingApplied(logger, address, "Backlog", Show(was?.Backlog), backlog.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (socket.AddressFamily != System.Net.Sockets.AddressFamily.Unix)
        {
            var defer = options.DeferAccept is { } d ? SocketConfigurator.DeferAcceptSeconds(d) : 0;
            var fastOpen = options.FastOpen ?? 0;
            if (was?.DeferAccept != defer || was.FastOpen != fastOpen)
            {
                SocketConfigurator.Retune(socket, options);
                if (was?.DeferAccept != defer)
                {
                    Log.HandoffSettingApplied(logger, address, "DeferAccept", Show(was?.DeferAccept) + " s", $"{defer} s");
                }

                if (was?.FastOpen != fastOpen)
                {
                    Log.HandoffSettingApplied(logger, address, "FastOpen", Show(was?.FastOpen), fastOpen.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
            }

            var reusePort = SocketConfigurator.GetRawInt(socket, SocketOptionNames.SolSocket, SocketOptionNames.SoReusePort) != 0;
            if (reusePort != options.ReusePort)
            {
                Log.HandoffSettingKept(logger, address, "ReusePort", reusePort, options.ReusePort);
            }
        }

        return bound with { Backlog = backlog };
    }

    private static string Show(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown";
}
