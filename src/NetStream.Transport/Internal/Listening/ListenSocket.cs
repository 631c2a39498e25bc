using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal;

/// <summary>The seed's <c>listen(backlog)</c>: makes, binds and listens the socket of one endpoint.</summary>
internal static partial class ListenSocket
{
    /// <summary>
    /// A listening socket and what the caller needs to know about it. <c>Backlog</c> is what <c>listen(2)</c> was
    /// given: null when an inherited socket was listening already. <c>TakenDescriptor</c>: an inherited descriptor
    /// that is NetStream's to close once the socket, which wraps it without owning it, is disposed.
    /// </summary>
    public sealed record Bound(Socket Socket, EndPoint EndPoint, int? Backlog, string? UnixPath, ulong? TakenDescriptor = null, bool Inherited = false);

    /// <summary>Closes a bound socket that no listener took: its Unix socket file, the socket, the taken descriptor it wraps.</summary>
    public static void Release(Bound bound)
    {
        try
        {
            if (bound.UnixPath is { } path)
            {
                UnixSocketFile.Remove(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind: the next bind finds it stale and replaces it.
        }

        bound.Socket.Dispose();
        if (bound.TakenDescriptor is { } descriptor)
        {
            Descriptor.Close(descriptor);
        }
    }

    public static Bound Create(EndPoint endPoint, NetStreamTransportOptions options, ILogger logger)
    {
        var backlog = options.Backlog ?? Somaxconn.Value;
        if (backlog <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), backlog, "The listen backlog must be a positive number.");
        }

        return endPoint switch
        {
            FileHandleEndPoint handle => Inherit(handle, backlog),
            UnixDomainSocketEndPoint unix => BindUnix(unix, options, backlog, logger),
            IPEndPoint ip => BindTcp(ip, options, backlog),
            _ => throw new NotSupportedException($"NetStream cannot bind {endPoint.GetType().Name} {endPoint}."),
        };
    }

    private static Bound BindTcp(IPEndPoint endPoint, NetStreamTransportOptions options, int backlog)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (SocketConfigurator.IsIPv6Any(endPoint))
            {
                socket.DualMode = true;
            }

            SocketConfigurator.BeforeBind(socket, options);
            Bind(socket, endPoint);
            SocketConfigurator.BeforeListen(socket, options);
            socket.Listen(backlog);
            return new Bound(socket, socket.LocalEndPoint!, backlog, UnixPath: null);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Bound BindUnix(UnixDomainSocketEndPoint endPoint, NetStreamTransportOptions options, int backlog, ILogger logger)
    {
        var path = endPoint.ToString();

        // Abstract sockets (a leading NUL, shown as '@') have no file to probe, chmod or remove.
        var isFile = path.Length > 0 && path[0] is not ('\0' or '@');
        if (isFile)
        {
            UnixSocketFile.PrepareForBind(path, logger);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var bound = false;
        try
        {
            SocketConfigurator.BeforeBind(socket, options);
            BindUnixFile(socket, endPoint);
            bound = true;
            if (isFile && options.UnixSocketFileMode is { } mode)
            {
                UnixSocketFile.SetMode(path, mode);
            }

            socket.Listen(backlog);
            var listener = Rewrap(socket);
            socket = listener;
            return new Bound(listener, endPoint, backlog, isFile ? path : null);
        }
        catch
        {
            socket.Dispose();
            if (bound && isFile)
            {
                // The file this bind made goes with it (the runtime no longer removes it: see BindUnixFile).
                UnixSocketFile.Remove(path);
            }

            throw;
        }
    }

    private static Bound Inherit(FileHandleEndPoint endPoint, int backlog)
    {
        // Already bound by whoever passed it on (systemd, a parent process, the application): wrap it, never re-bind it.
        // Checked first: a socket wrapping a descriptor owns it, and would close, say, a standard stream it was
        // wrongly given.
        var target = DescriptorTarget(endPoint.FileHandle);
        if (target is null || !target.StartsWith("socket:", StringComparison.Ordinal))
        {
            throw new IOException(target is null
                ? $"The inherited descriptor {endPoint.FileHandle} is not open in this process."
                : $"The inherited descriptor {endPoint.FileHandle} is not a socket: it is {target}.");
        }

        // Wrapped, never owned: disposing a socket that owns its descriptor while an accept is pending closes it
        // abortively, which sets SO_LINGER {on, 0} on the listening socket, and every connection it accepts from then
        // on would inherit it, in whichever process still holds the socket (systemd; the application that passed a
        // ListenHandle). A descriptor handed over to NetStream is closed by it after the socket is disposed; the
        // application's (Kestrel's ListenHandle) stays the application's, open and untouched, as with Kestrel's
        // Sockets transport.
        var taken = endPoint is TakenFileHandleEndPoint ? endPoint.FileHandle : (ulong?)null;
        var socket = new Socket(new SafeSocketHandle((IntPtr)endPoint.FileHandle, ownsHandle: false));
        try
        {
            if (socket.SocketType != SocketType.Stream)
            {
                throw new NotSupportedException($"The inherited descriptor {endPoint.FileHandle} is a {socket.SocketType} socket, not a stream socket.");
            }

            if (taken is not null)
            {
                Descriptor.SetCloseOnExec(socket);
            }

            int? listened = null;
            if (!SocketConfigurator.IsListening(socket))
            {
                socket.Listen(backlog);
                listened = backlog;
            }

            return new Bound(socket, socket.LocalEndPoint ?? endPoint, listened, UnixPath: null, taken, Inherited: true);
        }
        catch
        {
            socket.Dispose();
            if (taken is { } descriptor)
            {
                Descriptor.Close(descriptor);
            }

            throw;
        }
    }

    /// <summary>What the descriptor refers to, as <c>/proc/self/fd</c> shows it (<c>socket:[inode]</c>, a path, ...); null if it is not open.</summary>
    private static string? DescriptorTarget(ulong descriptor)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{descriptor}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// Binds a Unix socket with <c>bind(2)</c> itself, not <see cref="Socket.Bind"/>: a socket the runtime bound to a
    /// file removes that file when it is disposed, and NetStream decides that (at unbind; never after a handoff, whose
    /// successor serves the same file).
    /// </summary>
    private static unsafe void BindUnixFile(Socket socket, UnixDomainSocketEndPoint endPoint)
    {
        var address = endPoint.Serialize();
        int result;
        fixed (byte* bytes = address.Buffer.Span)
        {
            result = BindNative((int)socket.SafeHandle.DangerousGetHandle(), bytes, address.Size);
        }

        if (result != 0)
        {
            // An errno, not a SocketError: compared as one.
            var errno = Marshal.GetLastPInvokeError();
            throw errno == EAddrInUse
                ? new AddressInUseException($"{endPoint} is already in use.")
                : new IOException($"Binding {endPoint} failed: {Marshal.GetPInvokeErrorMessage(errno)}{BindHint(endPoint, errno == EAcces ? SocketError.AccessDenied : SocketError.SocketError)}");
        }
    }

    /// <summary>
    /// The bound, listening socket as a <see cref="Socket"/> that knows its address (read back from the kernel, as for
    /// an inherited socket): the one bound with <c>bind(2)</c> does not, and could not accept. Its descriptor moves to the
    /// new one (a close-on-exec duplicate; the first is closed, plainly: nothing is pending on it).
    /// </summary>
    private static Socket Rewrap(Socket bound)
    {
        var duplicate = DuplicateCloseOnExec((int)bound.SafeHandle.DangerousGetHandle(), 1030, 3);
        if (duplicate < 0)
        {
            throw new IOException($"fcntl(F_DUPFD_CLOEXEC) failed: {Errno.Name(Marshal.GetLastPInvokeError())}.");
        }

        bound.Dispose();
        try
        {
            return new Socket(new SafeSocketHandle(duplicate, ownsHandle: true));
        }
        catch
        {
            Descriptor.Close((ulong)duplicate);
            throw;
        }
    }

    private const int EAcces = 13;
    private const int EAddrInUse = 98;

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static unsafe partial int BindNative(int socket, byte* address, int length);

    // F_DUPFD_CLOEXEC = 1030; the third argument is the lowest descriptor number taken.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int DuplicateCloseOnExec(int fd, int command, int lowest);

    private static void Bind(Socket socket, EndPoint endPoint)
    {
        try
        {
            socket.Bind(endPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException($"{endPoint} is already in use.", e);
        }
        catch (SocketException e)
        {
            throw new IOException($"Binding {endPoint} failed: {e.Message}{BindHint(endPoint, e.SocketErrorCode)}", e);
        }
    }

    /// <summary>What the kernel's terse error usually means for this kind of endpoint.</summary>
    private static string BindHint(EndPoint endPoint, SocketError error) => (endPoint, error) switch
    {
        (UnixDomainSocketEndPoint unix, _) when Path.GetDirectoryName(unix.ToString()) is { Length: > 0 } directory && !Directory.Exists(directory)
            => $" (the directory {directory} does not exist).",
        (IPEndPoint, SocketError.AddressNotAvailable) => " (the address is not one of this host's).",
        (_, SocketError.AccessDenied) => " (this process may not bind it: a port under 1024 needs CAP_NET_BIND_SERVICE, a socket file write access to its directory).",
        _ => ".",
    };
}
