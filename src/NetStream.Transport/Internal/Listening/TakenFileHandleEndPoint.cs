using Microsoft.AspNetCore.Connections;

namespace NetStream.Transport.Internal;

/// <summary>
/// An inherited descriptor handed to NetStream to own (systemd's sockets, the hosted server's <c>fd:N</c>): it is made
/// close-on-exec and closed at unbind. A plain <see cref="FileHandleEndPoint"/> (Kestrel's <c>ListenHandle</c>) stays
/// its caller's, as with Kestrel's Sockets transport: NetStream wraps it without owning it.
/// </summary>
internal sealed class TakenFileHandleEndPoint(ulong fileHandle) : FileHandleEndPoint(fileHandle, FileHandleType.Auto);
