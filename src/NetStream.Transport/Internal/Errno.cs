using System.Net.Sockets;

namespace NetStream.Transport.Internal;

/// <summary>The Linux error numbers NetStream acts on, by name, and the way back to them from the runtime's exceptions.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EINVAL = 22;
    public const int EPIPE = 32;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int ENOSR = 63;
    public const int ENONET = 64;
    public const int EPROTO = 71;
    public const int ENOTSOCK = 88;
    public const int ENOPROTOOPT = 92;
    public const int ESOCKTNOSUPPORT = 94;
    public const int EOPNOTSUPP = 95;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ENOBUFS = 105;
    public const int ETIMEDOUT = 110;
    public const int EHOSTDOWN = 112;
    public const int EHOSTUNREACH = 113;

    /// <summary>The symbolic name, e.g. <c>EMFILE</c>; <c>errno 77</c> for one NetStream has no name for.</summary>
    public static string Name(int errno) => errno switch
    {
        EPERM => nameof(EPERM),
        ENOENT => nameof(ENOENT),
        EINTR => nameof(EINTR),
        EBADF => nameof(EBADF),
        EAGAIN => nameof(EAGAIN),
        ENOMEM => nameof(ENOMEM),
        EACCES => nameof(EACCES),
        EINVAL => nameof(EINVAL),
        EPIPE => nameof(EPIPE),
        ENFILE => nameof(ENFILE),
        EMFILE => nameof(EMFILE),
        ENOSR => nameof(ENOSR),
        ENONET => nameof(ENONET),
        EPROTO => nameof(EPROTO),
        ENOTSOCK => nameof(ENOTSOCK),
        ENOPROTOOPT => nameof(ENOPROTOOPT),
        ESOCKTNOSUPPORT => nameof(ESOCKTNOSUPPORT),
        EOPNOTSUPP => nameof(EOPNOTSUPP),
        ENETDOWN => nameof(ENETDOWN),
        ENETUNREACH => nameof(ENETUNREACH),
        ECONNABORTED => nameof(ECONNABORTED),
        ECONNRESET => nameof(ECONNRESET),
        ENOBUFS => nameof(ENOBUFS),
        ETIMEDOUT => nameof(ETIMEDOUT),
        EHOSTDOWN => nameof(EHOSTDOWN),
        EHOSTUNREACH => nameof(EHOSTUNREACH),
        _ => $"errno {errno}",
    };

    /// <summary>
    /// The errno behind a <see cref="SocketException"/>, when the runtime kept it: <see langword="null"/> for its
    /// catch-all <see cref="SocketError.SocketError"/>, which stands for every errno it has no name for (on .NET 10:
    /// ENOMEM and EPROTO among them) and drops the number.
    /// </summary>
    public static int? Of(SocketException e) =>
        e.SocketErrorCode != SocketError.SocketError && e.NativeErrorCode > 0 ? e.NativeErrorCode : null;
}
