using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal;

/// <summary>Reads <c>getsockopt(TCP_INFO)</c> into a <see cref="TcpInfo"/>; offsets of <c>struct tcp_info</c> in <c>linux/tcp.h</c>.</summary>
internal static class TcpInfoReader
{
    /// <summary>Up to <c>tcpi_bytes_retrans</c> (Linux 4.19); a kernel that reports less leaves the rest zero.</summary>
    private const int Size = 216;

    public static bool TryRead(Socket socket, out TcpInfo info)
    {
        Span<byte> raw = stackalloc byte[Size];
        raw.Clear();
        try
        {
            socket.GetRawSocketOption(SocketOptionNames.IpProtoTcp, SocketOptionNames.TcpInfo, raw);
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            info = default;
            return false;
        }

        info = Parse(raw);
        return true;
    }

    internal static TcpInfo Parse(ReadOnlySpan<byte> raw)
    {
        var state = raw[0];
        return new TcpInfo
        {
            State = state is >= 1 and <= 11 ? (TcpConnectionState)state : TcpConnectionState.Unknown,
            Retransmits = raw[2],
            Options = (TcpInfoOptions)(raw[5] & 0x3F),
            SendMss = (int)U32(raw, 16),
            ReceiveMss = (int)U32(raw, 20),
            Unacked = (int)U32(raw, 24),
            Lost = (int)U32(raw, 32),
            SinceLastSend = TimeSpan.FromMilliseconds(U32(raw, 44)),
            SinceLastReceive = TimeSpan.FromMilliseconds(U32(raw, 52)),
            RoundTripTime = TimeSpan.FromMicroseconds(U32(raw, 68)),
            RoundTripTimeVariance = TimeSpan.FromMicroseconds(U32(raw, 72)),
            CongestionWindow = (int)U32(raw, 80),
            TotalRetransmits = U32(raw, 100),
            BytesAcked = (long)U64(raw, 120),
            BytesReceived = (long)U64(raw, 128),
            // ~0 until the first measurement.
            MinRoundTripTime = U32(raw, 148) == uint.MaxValue ? TimeSpan.Zero : TimeSpan.FromMicroseconds(U32(raw, 148)),
            DeliveryRate = (long)U64(raw, 160),
            BytesSent = (long)U64(raw, 200),
        };
    }

    private static uint U32(ReadOnlySpan<byte> raw, int offset) => MemoryMarshal.Read<uint>(raw[offset..]);

    private static ulong U64(ReadOnlySpan<byte> raw, int offset) => MemoryMarshal.Read<ulong>(raw[offset..]);
}

/// <summary><see cref="NetStreamTransportOptions.TcpInfoOnClose"/> for one listener's connections: their last <c>TCP_INFO</c> into the histograms.</summary>
internal sealed class TcpInfoOnClose(NetStreamMetrics metrics, MetricTags endpoint)
{
    public void Record(Socket socket)
    {
        if (socket.ProtocolType == ProtocolType.Tcp && TcpInfoReader.TryRead(socket, out var info))
        {
            metrics.ClosedTcpInfo(endpoint, info);
        }
    }
}
