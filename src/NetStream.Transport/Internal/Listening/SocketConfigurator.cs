using System.Net;
using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>
/// Applies <see cref="NetStreamTransportOptions"/> to sockets: what must be set before bind or listen goes on the
/// listening socket (accepted sockets inherit it), the rest on each accepted socket.
/// </summary>
internal static class SocketConfigurator
{
    /// <summary>Options that must be set before <c>bind(2)</c>.</summary>
    public static void BeforeBind(Socket listener, NetStreamTransportOptions options)
    {
        if (listener.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            if (!options.ReuseAddress)
            {
                // The runtime's Socket.Bind turns SO_REUSEADDR on for every TCP socket; clearing it here would be a silent no-op.
                throw new NotSupportedException("ReuseAddress = false is not supported: the .NET runtime sets SO_REUSEADDR on every TCP socket it binds.");
            }

            // Raw: on Linux the runtime's SocketOptionName.ReuseAddress also sets SO_REUSEPORT, which must stay opt-in.
            SetRaw(listener, "SO_REUSEADDR", SocketOptionNames.SolSocket, SocketOptionNames.SoReuseAddr, 1);
            if (options.ReusePort)
            {
                SetRaw(listener, "SO_REUSEPORT", SocketOptionNames.SolSocket, SocketOptionNames.SoReusePort, 1);
            }
        }

        // The receive buffer must be sized before listen so the window scale offered in the handshake fits it.
        if (options.ReceiveBufferSize is { } receive)
        {
            Set(listener, "SO_RCVBUF", s => s.ReceiveBufferSize = receive);
        }

        if (options.SendBufferSize is { } send)
        {
            Set(listener, "SO_SNDBUF", s => s.SendBufferSize = send);
        }
    }

    /// <summary>Options of a TCP listening socket, set between <c>bind(2)</c> and <c>listen(2)</c>.</summary>
    public static void BeforeListen(Socket listener, NetStreamTransportOptions options)
    {
        if (options.DeferAccept is { } defer)
        {
            SetRaw(listener, "TCP_DEFER_ACCEPT", SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpDeferAccept, DeferAcceptSeconds(defer));
        }

        if (options.FastOpen is { } queue)
        {
            // Without the kernel's server side the option is taken and does nothing: say so instead.
            if (FastOpenSysctl.Read() is { } sysctl && !FastOpenSysctl.EnablesServer(sysctl))
            {
                throw new NotSupportedException(
                    $"FastOpen = {queue}: the kernel's net.ipv4.tcp_fastopen = {sysctl} does not enable Fast Open for servers (bit 2); " +
                    "set it to 3 (sysctl -w net.ipv4.tcp_fastopen=3, and in /etc/sysctl.d to keep it) or remove FastOpen from the NetStream options.");
            }

            SetRaw(listener, "TCP_FASTOPEN", SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpFastOpen, queue);
        }
    }

    /// <summary>
    /// Sets <c>TCP_DEFER_ACCEPT</c> and <c>TCP_FASTOPEN</c> of a socket that listens already (taken over from another
    /// process) to <paramref name="options"/>: as <see cref="BeforeListen"/> does, and off where they are unset.
    /// </summary>
    public static void Retune(Socket listener, NetStreamTransportOptions options)
    {
        BeforeListen(listener, options);
        if (options.DeferAccept is null)
        {
            SetRaw(listener, "TCP_DEFER_ACCEPT", SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpDeferAccept, 0);
        }

        if (options.FastOpen is null)
        {
            SetRaw(listener, "TCP_FASTOPEN", SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpFastOpen, 0);
        }
    }

    /// <summary><c>TCP_DEFER_ACCEPT</c>'s whole seconds, rounded up: the kernel counts seconds.</summary>
    public static int DeferAcceptSeconds(TimeSpan defer) => (int)Math.Min(Math.Ceiling(defer.TotalSeconds), int.MaxValue);

    /// <summary>
    /// The options set in configuration or code that a Unix socket has no use for (TCP's), by key; the defaults
    /// (TCP_NODELAY on) are not counted.
    /// </summary>
    public static List<string> TcpOnlyOptionsSet(NetStreamTransportOptions options)
    {
        var set = new List<string>();
        void Add(bool isSet, string key)
        {
            if (isSet)
            {
                set.Add(key);
            }
        }

        Add(options.Cork, "Cork");
        Add(options.OobInline, "OobInline");
        Add(options.Linger is not null, "Linger");
        Add(options.KeepAlive.Enabled, "KeepAlive");
        Add(options.ReusePort, "ReusePort");
        Add(options.DeferAccept is not null, "DeferAccept");
        Add(options.FastOpen is not null, "FastOpen");
        Add(options.TcpInfoOnClose, "TcpInfoOnClose");
        Add(options.IncomingCpu, "IncomingCpu");
        Add(options.AcceptShards > 1, "AcceptShards");
        return set;
    }

    /// <summary>Options set on every accepted socket. Only what differs from the kernel's default costs a syscall.</summary>
    public static void Accepted(Socket socket, NetStreamTransportOptions options)
    {
        if (socket.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            return;
        }

        if (options.NoDelay)
        {
            socket.NoDelay = true;
        }

        if (options.Cork)
        {
            SetRaw(socket, "TCP_CORK", SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpCork, 1);
        }

        if (options.OobInline)
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.OutOfBandInline, true);
        }

        if (options.Linger is { } linger)
        {
            socket.LingerState = new LingerOption(true, KernelLingerSeconds(linger));
        }

        var keepAlive = options.KeepAlive;
        if (keepAlive.Enabled)
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            if (keepAlive.Idle is { } idle)
            {
                Set(socket, "TCP_KEEPIDLE", s => s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, (int)idle.TotalSeconds));
            }

            if (keepAlive.Interval is { } interval)
            {
                Set(socket, "TCP_KEEPINTVL", s => s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, (int)interval.TotalSeconds));
            }

            if (keepAlive.Count is { } count)
            {
                Set(socket, "TCP_KEEPCNT", s => s.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, count));
            }
        }
    }

    /// <summary>
    /// <c>SO_LINGER</c>'s time for the kernel, which counts whole seconds: rounded up, for 0 would turn a graceful close
    /// into a reset. Only zero is zero. NetStream's own connections time a lingering close themselves, to the
    /// millisecond; the kernel's value serves connections of other types and a close NetStream cannot time.
    /// </summary>
    public static int KernelLingerSeconds(TimeSpan linger) => (int)Math.Min(Math.Ceiling(linger.TotalSeconds), int.MaxValue);

    /// <summary>Reads <c>SO_ACCEPTCONN</c>: whether the socket is listening.</summary>
    public static bool IsListening(Socket socket) =>
        GetRawInt(socket, SocketOptionNames.SolSocket, SocketOptionNames.SoAcceptConn) != 0;

    public static int GetRawInt(Socket socket, int level, int name)
    {
        Span<byte> value = stackalloc byte[sizeof(int)];
        socket.GetRawSocketOption(level, name, value);
        return BitConverter.ToInt32(value);
    }

    private static void SetRaw(Socket socket, string option, int level, int name, int value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(int)];
        BitConverter.TryWriteBytes(bytes, value);
        try
        {
            socket.SetRawSocketOption(level, name, bytes);
        }
        catch (SocketException e)
        {
            throw Unsupported(option, e);
        }
        catch (PlatformNotSupportedException e)
        {
            throw Unsupported(option, e);
        }
    }

    private static void Set(Socket socket, string option, Action<Socket> set)
    {
        try
        {
            set(socket);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ProtocolOption or SocketError.OperationNotSupported or SocketError.InvalidArgument)
        {
            throw Unsupported(option, e);
        }
        catch (PlatformNotSupportedException e)
        {
            throw Unsupported(option, e);
        }
    }

    private static NotSupportedException Unsupported(string option, Exception inner) =>
        new($"The socket option {option} is not supported here ({inner.Message}); remove it from the NetStream options.", inner);

    /// <summary>Whether the endpoint names the IPv6 any-address, which NetStream binds dual-mode.</summary>
    public static bool IsIPv6Any(EndPoint endPoint) =>
        endPoint is IPEndPoint { Address: var address } && address.Equals(IPAddress.IPv6Any);
}

/// <summary>The kernel's <c>net.ipv4.tcp_fastopen</c>: bit 1 enables clients, bit 2 servers.</summary>
internal static class FastOpenSysctl
{
    private const string Path = "/proc/sys/net/ipv4/tcp_fastopen";

    /// <summary>The value, or <see langword="null"/> where it cannot be read (then the option is set and trusted).</summary>
    public static int? Read()
    {
        try
        {
            return int.TryParse(File.ReadAllText(Path).Trim(), out var value) ? value : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static bool EnablesServer(int value) => (value & 2) != 0;
}
