using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>Linux option numbers that <see cref="SocketOptionName"/> does not name.</summary>
internal static class SocketOptionNames
{
    public const int SolSocket = 1;
    public const int SoReuseAddr = 2;
    public const int SoAcceptConn = 30;
    public const int SoReusePort = 15;
    public const int SoPeerCred = 17;
    public const int IpProtoTcp = 6;
    public const int TcpCork = 3;
    public const int TcpInfo = 11;
    public const int TcpDeferAccept = 9;
    public const int TcpFastOpen = 23;
}
