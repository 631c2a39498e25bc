using System.Runtime.InteropServices;

namespace NetStream.Transport;

/// <summary>
/// The kernel's view of one TCP connection, read on demand with <c>getsockopt(TCP_INFO)</c>. Every TCP connection
/// NetStream accepts has it (either engine, Kestrel or the hosted server); a Unix socket connection does not.
/// In Kestrel: <c>httpContext.Features.Get&lt;ITcpInfoFeature&gt;()</c>.
/// </summary>
public interface ITcpInfoFeature
{
    /// <summary>
    /// Reads the connection's TCP state now: one system call, nothing allocated. Cheap enough for a slow request's
    /// log line, not meant for every request of a busy server.
    /// </summary>
    /// <param name="info">The snapshot, when the read succeeded.</param>
    /// <returns><see langword="false"/> once the connection's socket is closed.</returns>
    bool TryRead(out TcpInfo info);
}

/// <summary>A TCP connection's state as the kernel sees it (<c>TCP_*</c> in <c>linux/tcp.h</c>).</summary>
public enum TcpConnectionState
{
    /// <summary>The kernel reported no state this version knows.</summary>
    Unknown = 0,

    /// <summary>Open: data flows both ways.</summary>
    Established = 1,

    /// <summary>A connect's SYN is sent.</summary>
    SynSent = 2,

    /// <summary>A SYN is received and answered (a Fast Open connection may be accepted in this state).</summary>
    SynReceived = 3,

    /// <summary>This side closed first; its FIN is not yet acknowledged.</summary>
    FinWait1 = 4,

    /// <summary>This side's FIN is acknowledged; the peer's is awaited.</summary>
    FinWait2 = 5,

    /// <summary>Both sides closed, this one first; waiting out stray segments.</summary>
    TimeWait = 6,

    /// <summary>Closed.</summary>
    Close = 7,

    /// <summary>The peer closed its side (FIN received); this side may still send.</summary>
    CloseWait = 8,

    /// <summary>The peer closed first, then this side; this side's FIN is not yet acknowledged.</summary>
    LastAck = 9,

    /// <summary>A listening socket.</summary>
    Listen = 10,

    /// <summary>Both sides closed at once.</summary>
    Closing = 11,
}

/// <summary>TCP options the connection negotiated (<c>TCPI_OPT_*</c>).</summary>
[Flags]
public enum TcpInfoOptions
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>Timestamps (RFC 7323).</summary>
    Timestamps = 1,

    /// <summary>Selective acknowledgements.</summary>
    Sack = 2,

    /// <summary>Window scaling.</summary>
    WindowScale = 4,

    /// <summary>Explicit congestion notification negotiated.</summary>
    Ecn = 8,

    /// <summary>An ECN mark was seen.</summary>
    EcnSeen = 16,

    /// <summary>Data in the SYN was accepted (TCP Fast Open): the connection's first bytes came with its handshake.</summary>
    SynData = 32,
}

/// <summary>
/// A snapshot of <c>struct tcp_info</c>: what the kernel measured of one TCP connection. Fields a kernel does not
/// report (older than the field) read as zero.
/// </summary>
[StructLayout(LayoutKind.Auto)]
public readonly record struct TcpInfo
{
    /// <summary>The connection's state.</summary>
    public TcpConnectionState State { get; init; }

    /// <summary>The options negotiated in the handshake.</summary>
    public TcpInfoOptions Options { get; init; }

    /// <summary>The smoothed round-trip time.</summary>
    public TimeSpan RoundTripTime { get; init; }

    /// <summary>The round-trip time's mean deviation.</summary>
    public TimeSpan RoundTripTimeVariance { get; init; }

    /// <summary>The lowest round-trip time seen.</summary>
    public TimeSpan MinRoundTripTime { get; init; }

    /// <summary>Retransmission timeouts in a row without progress, now (0 on a healthy connection).</summary>
    public int Retransmits { get; init; }

    /// <summary>Segments retransmitted over the connection's life.</summary>
    public long TotalRetransmits { get; init; }

    /// <summary>The congestion window, in segments.</summary>
    public int CongestionWindow { get; init; }

    /// <summary>The maximum segment size this side sends.</summary>
    public int SendMss { get; init; }

    /// <summary>The maximum segment size estimated for what this side receives.</summary>
    public int ReceiveMss { get; init; }

    /// <summary>Bytes the peer acknowledged.</summary>
    public long BytesAcked { get; init; }

    /// <summary>Bytes received (in order; what the application can read, or has read).</summary>
    public long BytesReceived { get; init; }

    /// <summary>Bytes sent, retransmissions included.</summary>
    public long BytesSent { get; init; }

    /// <summary>The most recent delivery rate, in bytes per second.</summary>
    public long DeliveryRate { get; init; }

    /// <summary>Segments sent and not yet acknowledged.</summary>
    public int Unacked { get; init; }

    /// <summary>Segments the kernel considers lost.</summary>
    public int Lost { get; init; }

    /// <summary>Time since data was last sent.</summary>
    public TimeSpan SinceLastSend { get; init; }

    /// <summary>Time since data was last received.</summary>
    public TimeSpan SinceLastReceive { get; init; }
}
