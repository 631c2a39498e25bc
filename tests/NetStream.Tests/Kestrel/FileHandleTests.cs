using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Kestrel;

/// <summary>
/// Kestrel's <c>ListenHandle</c> reaches NetStream as a <c>FileHandleEndPoint</c>: an inherited descriptor, as from
/// systemd socket activation. NetStream takes ownership of it (it wraps it with <c>ownsHandle: true</c> and closes
/// it at unbind), so each test hands over a <c>dup(2)</c> of its own socket and disposes its own socket before the
/// app starts: exactly one owner per descriptor, no double close, no descriptor number closed after reuse.
/// </summary>
public sealed partial class FileHandleTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ListenHandle_serves_requests_on_an_inherited_socket(bool alreadyListening)
    {
        using var timeout = KestrelApp.Timeout();
        var (descriptor, endPoint) = BindAndHandOver(alreadyListening);

        await using var app = await KestrelApp.StartAsync(
            k => k.ListenHandle(descriptor),
            a => a.Run(context => context.Response.WriteAsync($"handle {context.Connection.LocalPort}")),
            timeout.Token);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{endPoint}"), Timeout = KestrelApp.TestTimeout };

        Assert.Equal($"handle {endPoint.Port}", await client.GetStringAsync("/", timeout.Token));
        Assert.Equal($"handle {endPoint.Port}", await client.GetStringAsync("/again", timeout.Token));
    }

    [Fact]
    public async Task ListenHandle_descriptor_is_closed_when_the_app_stops()
    {
        using var timeout = KestrelApp.Timeout();
        var (descriptor, endPoint) = BindAndHandOver(alreadyListening: true);
        await using var app = await KestrelApp.StartAsync(
            k => k.ListenHandle(descriptor),
            a => a.Run(context => context.Response.WriteAsync("up")),
            timeout.Token);

        await app.StopAsync();

        // The descriptor was the socket's only one left, so closing it closed the socket: nobody listens there now.
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync(endPoint, timeout.Token));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task An_inherited_descriptor_is_made_close_on_exec_as_sd_listen_fds_does()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();

        // Inheritable, as a parent process or systemd hands it over (a plain dup clears close-on-exec).
        var descriptor = PlainDup((int)socket.SafeHandle.DangerousGetHandle());
        Assert.True(descriptor >= 0);
        Assert.False(IsCloseOnExec(descriptor));
        await using var listener = await Listeners.BindAsync(new FileHandleEndPoint((ulong)descriptor, FileHandleType.Tcp));

        Assert.True(IsCloseOnExec(descriptor));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_inherited_socket_reports_the_backlog_it_was_given_or_none_if_its_owner_listened(bool alreadyListening)
    {
        var (descriptor, _) = BindAndHandOver(alreadyListening);

        await using var listener = await Listeners.BindAsync(new FileHandleEndPoint(descriptor, FileHandleType.Tcp), o => o.Backlog = 16);

        // Listening already, its backlog is the owner's (listen(2) without one: SOMAXCONN), not the 16 configured here.
        Assert.Equal(alreadyListening ? null : 16, listener.Backlog);
    }

    private static bool IsCloseOnExec(int descriptor)
    {
        const int OCloexec = 0x80000; // O_CLOEXEC, as /proc shows it in the octal "flags:" line
        var flags = File.ReadLines($"/proc/self/fdinfo/{descriptor}").First(l => l.StartsWith("flags:", StringComparison.Ordinal));
        return (Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & OCloexec) != 0;
    }

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int PlainDup(int fd);

    /// <summary>Binds 127.0.0.1:0 (listening or not) and returns a duplicate descriptor for NetStream to own.</summary>
    internal static (ulong Descriptor, IPEndPoint EndPoint) BindAndHandOver(bool alreadyListening)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        if (alreadyListening)
        {
            socket.Listen();
        }

        // Close-on-exec, like every descriptor the runtime makes: tests that start child processes run in parallel,
        // and a child that inherited this descriptor would keep the socket listening after NetStream closed it.
        var duplicate = DuplicateCloseOnExec((int)socket.SafeHandle.DangerousGetHandle(), FDupFdCloexec, 0);
        if (duplicate < 0)
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }

        return ((ulong)duplicate, (IPEndPoint)socket.LocalEndPoint!);
    }

    private const int FDupFdCloexec = 1030; // F_DUPFD_CLOEXEC

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int DuplicateCloseOnExec(int fd, int command, int lowest);
}
