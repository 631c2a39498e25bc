using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Kestrel;

/// <summary>
/// Kestrel's <c>ListenHandle</c> reaches NetStream as a <c>FileHandleEndPoint</c>: an inherited descriptor, as from
/// systemd socket activation. It stays the caller's, as with Kestrel's Sockets transport (NetStream listens on a
/// duplicate), so each test hands over a <c>dup(2)</c> of its own socket and closes it itself; the hosted server's
/// <c>fd:N</c> (a <c>TakenFileHandleEndPoint</c>) is NetStream's own, and closed by it.
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
        using var handle = new SafeSocketHandle((IntPtr)descriptor, ownsHandle: true);

        await using var app = await KestrelApp.StartAsync(
            k => k.ListenHandle(descriptor),
            a => a.Run(context => context.Response.WriteAsync($"handle {context.Connection.LocalPort}")),
            timeout.Token);
        using var client = new HttpClient { BaseAddress = new Uri($"http://{endPoint}"), Timeout = KestrelApp.TestTimeout };

        Assert.Equal($"handle {endPoint.Port}", await client.GetStringAsync("/", timeout.Token));
        Assert.Equal($"handle {endPoint.Port}", await client.GetStringAsync("/again", timeout.Token));
    }

    [Fact]
    public async Task A_taken_descriptor_is_closed_at_unbind_and_a_listen_handle_is_left_open()
    {
        var (taken, takenEndPoint) = BindAndHandOver(alreadyListening: true);
        var (kept, keptEndPoint) = BindAndHandOver(alreadyListening: true);
        using var keptHandle = new SafeSocketHandle((IntPtr)kept, ownsHandle: true);

        await (await Listeners.BindAsync(new TakenFileHandleEndPoint(taken))).DisposeAsync();
        await (await Listeners.BindAsync(new FileHandleEndPoint(kept, FileHandleType.Tcp))).DisposeAsync();

        // The taken descriptor was its socket's only one left: closing it closed the socket, nobody listens there now.
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await probe.ConnectAsync(takenEndPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        // The kept one still listens: the kernel completes a connect into its backlog.
        using var keptProbe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await keptProbe.ConnectAsync(keptEndPoint);
    }

    [Fact]
    public async Task Closing_a_taken_descriptor_with_an_accept_pending_leaves_the_shared_socket_without_SO_LINGER()
    {
        // systemd keeps a descriptor of the socket it passes, and passes it again after a restart.
        using var systemds = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        systemds.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        systemds.Listen();
        var passed = DuplicateCloseOnExec(systemds);
        var listener = await Listeners.BindAsync(new TakenFileHandleEndPoint(passed));

        // A window for the accept to reach the socket engine: if it has not, the test passes without proving anything.
        var pending = listener.AcceptAsync(Listeners.TimeoutToken()).AsTask();
        await Task.Delay(100);
        await listener.DisposeAsync();

        Assert.Null(await pending.WaitAsync(Listeners.Timeout));
        Assert.False(systemds.LingerState!.Enabled, "systemd's listening socket now has SO_LINGER {on, 0}.");
        Assert.False(File.Exists($"/proc/self/fd/{passed}") && new FileInfo($"/proc/self/fd/{passed}").LinkTarget == new FileInfo($"/proc/self/fd/{systemds.SafeHandle.DangerousGetHandle()}").LinkTarget, "The taken descriptor is still open.");
    }

    [Fact]
    public async Task A_listen_handle_bound_again_in_the_same_process_never_throws_out_of_accept()
    {
        using var mine = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        mine.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        mine.Listen();
        var handle = new FileHandleEndPoint((ulong)mine.SafeHandle.DangerousGetHandle(), FileHandleType.Tcp);
        await using (var first = await Listeners.BindAsync(handle))
        {
            // One accept served, so the runtime's socket engine has registered the descriptor.
            var accepting = first.AcceptAsync(Listeners.TimeoutToken()).AsTask();
            using var client = await Listeners.ConnectAsync(mine.LocalEndPoint!);
            await using var served = (await accepting.WaitAsync(Listeners.Timeout))!;
        }

        // The runtime keeps a descriptor it did not close registered, and may refuse it a second time: that is an
        // accept error (logged, retried with back-off), never an exception that ends the caller's accept loop.
        var second = await Listeners.BindAsync(handle);
        var accept = second.AcceptAsync(Listeners.TimeoutToken()).AsTask();
        using var late = await Listeners.ConnectAsync(mine.LocalEndPoint!);

        // A window for the accept to fail at least once (if it has not, the test proves less, never fails wrongly).
        await Task.WhenAny(accept, Task.Delay(500));
        await second.DisposeAsync();

        var connection = await accept.WaitAsync(Listeners.Timeout);
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_taken_descriptor_is_made_close_on_exec_as_sd_listen_fds_does_and_a_listen_handle_is_left_as_it_is(bool taken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();

        // Inheritable, as a parent process or systemd hands it over (a plain dup clears close-on-exec).
        var descriptor = PlainDup((int)socket.SafeHandle.DangerousGetHandle());
        Assert.True(descriptor >= 0);
        Assert.False(IsCloseOnExec(descriptor));
        using var handle = taken ? null : new SafeSocketHandle(descriptor, ownsHandle: true);
        await using var listener = await Listeners.BindAsync(taken ? new TakenFileHandleEndPoint((ulong)descriptor) : new FileHandleEndPoint((ulong)descriptor, FileHandleType.Tcp));

        Assert.Equal(taken, IsCloseOnExec(descriptor));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_inherited_socket_reports_the_backlog_it_was_given_or_none_if_its_owner_listened(bool alreadyListening)
    {
        var (descriptor, _) = BindAndHandOver(alreadyListening);

        await using var listener = await Listeners.BindAsync(new TakenFileHandleEndPoint(descriptor), o => o.Backlog = 16);

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

        return (DuplicateCloseOnExec(socket), (IPEndPoint)socket.LocalEndPoint!);
    }

    /// <summary>
    /// A second descriptor of <paramref name="socket"/>, close-on-exec like every descriptor the runtime makes: tests
    /// that start child processes run in parallel, and a child that inherited it would keep the socket listening.
    /// </summary>
    internal static ulong DuplicateCloseOnExec(Socket socket)
    {
        var duplicate = DuplicateCloseOnExec((int)socket.SafeHandle.DangerousGetHandle(), FDupFdCloexec, 0);
        return duplicate >= 0 ? (ulong)duplicate : throw new SocketException(Marshal.GetLastPInvokeError());
    }

    private const int FDupFdCloexec = 1030; // F_DUPFD_CLOEXEC

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int DuplicateCloseOnExec(int fd, int command, int lowest);
}
