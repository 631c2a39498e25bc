using System.Net;
using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>
/// A remote endpoint as log lines name it, formatted only when a line is written: a Unix socket client is almost always
/// unnamed, and an empty address would read as a gap in the sentence.
/// </summary>
internal readonly struct Peer(EndPoint? remoteEndPoint)
{
    public override string ToString() => remoteEndPoint switch
    {
        null => "a peer already gone",
        UnixDomainSocketEndPoint unix when unix.ToString() is { Length: 0 } => "an unnamed Unix socket peer",
        UnixDomainSocketEndPoint unix => $"the Unix socket peer {unix}",
        _ => remoteEndPoint.ToString() ?? "a peer",
    };
}
