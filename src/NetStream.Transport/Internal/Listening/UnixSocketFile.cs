using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace NetStream.Transport.Internal;

/// <summary>
/// The file of a Unix socket endpoint. Unlike Kestrel, which never deletes one (it may not be ours), NetStream
/// probes it: nobody accepting means a stale file from a crashed process, safe to replace.
/// </summary>
internal static partial class UnixSocketFile
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28;
    private const int FileTypeMask = 0xF000;
    private const int SocketFileType = 0xC000;

    /// <summary>Makes way for bind: removes a stale socket file, refuses a live one or a file that is no socket.</summary>
    public static void PrepareForBind(string path, ILogger logger)
    {
        if (!Exists(path, out var isSocket))
        {
            return;
        }

        if (!isSocket)
        {
            throw new AddressInUseException($"The Unix socket path {path} is taken by a file that is not a socket; NetStream will not delete it.");
        }

        // Without waiting: a live listener whose backlog is full would keep a blocking connect waiting (EAGAIN instead).
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false })
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                File.Delete(path);
                Log.StaleUnixSocketReplaced(logger, path);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
            {
                return; // removed meanwhile
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain)
            {
                // Accepting, with a full backlog.
            }
        }

        throw new AddressInUseException($"The Unix socket {path} is in use: a process is accepting on it.");
    }

    /// <summary>Sets the octal <paramref name="mode"/> (e.g. <c>0660</c>) on the bound socket file.</summary>
    public static void SetMode(string path, string mode) => File.SetUnixFileMode(path, ParseMode(mode));

    /// <summary>Parses an octal file mode such as <c>0660</c> or <c>660</c>.</summary>
    public static UnixFileMode ParseMode(string mode)
    {
        var digits = mode.Trim();
        if (digits.Length is < 3 or > 4 || digits.Any(c => c is < '0' or > '7'))
        {
            throw new FormatException($"'{mode}' is not an octal file mode such as 0660.");
        }

        return (UnixFileMode)Convert.ToInt32(digits, 8);
    }

    /// <summary>Removes the socket file at unbind, if it is still a socket file.</summary>
    public static void Remove(string path)
    {
        if (Exists(path, out var isSocket) && isSocket)
        {
            File.Delete(path);
        }
    }

    private static bool Exists(string path, out bool isSocket)
    {
        // statx's layout is the same on every architecture, unlike struct stat's.
        Span<byte> statx = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(statx)) != 0)
        {
            isSocket = false;
            return false;
        }

        var mode = BitConverter.ToUInt16(statx.Slice(StatxModeOffset, 2));
        isSocket = (mode & FileTypeMask) == SocketFileType;
        return true;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, ref byte buffer);
}
