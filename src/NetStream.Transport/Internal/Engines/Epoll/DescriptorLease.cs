using System.Runtime.InteropServices;

namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>
/// A reference on a socket's handle for the length of one system call: the descriptor number stays that socket's until
/// the call returns, even if the connection is closed meanwhile (the close waits for the last reference).
/// </summary>
internal readonly ref struct DescriptorLease
{
    private readonly SafeHandle? _handle;

    public DescriptorLease(SafeHandle handle)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            // Closed already: IsHeld says so, and the call is not made.
        }

        _handle = added ? handle : null;
    }

    /// <summary>Whether the descriptor may be used; if not, the socket is closed (EBADF).</summary>
    public bool IsHeld => _handle is not null;

    public void Dispose() => _handle?.DangerousRelease();
}
