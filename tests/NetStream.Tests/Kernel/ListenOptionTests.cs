using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Kernel;

public sealed partial class ListenOptionTests
{
    private const int IpProtoTcp = 6;
    private const int TcpDeferAccept = 9;
    private const int TcpFastOpen = 23;

    [Fact]
    public async Task DeferAccept_hands_a_connection_over_only_once_its_first_bytes_arrive()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => o.DeferAccept = TimeSpan.FromSeconds(30));
        // The kernel keeps it as SYN-ACK retransmissions and reads it back as their total time: at least what was set.
        Assert.InRange(SocketConfigurator.GetRawInt(listener.Socket, IpProtoTcp, TcpDeferAccept), 30, 300);

        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var accept = listener.AcceptAsync(Listeners.TimeoutToken()).AsTask();
        // A quiet window, not a race: a connection that said nothing is not handed over, however long one waits.
        Assert.NotSame(accept, await Task.WhenAny(accept, Task.Delay(TimeSpan.FromMilliseconds(500))));

        await client.SendAsync("first"u8.ToArray());
        await using var connection = (await accept.WaitAsync(Listeners.Timeout))!;
        var read = await connection.Transport.Input.ReadAtLeastAsync(5, Listeners.TimeoutToken());
        Assert.Equal("first", Encoding.ASCII.GetString(read.Buffer));
    }

    [Fact]
    public async Task FastOpen_serves_the_bytes_a_client_put_in_its_SYN()
    {
        EnableFastOpenServerSide();
        await using var listener = await Listeners.BindLoopbackAsync(o => o.FastOpen = 16);
        Assert.Equal(16, SocketConfigurator.GetRawInt(listener.Socket, IpProtoTcp, TcpFastOpen));
        var passiveBefore = TcpExtCounter("TCPFastOpenPassive");

        // The first connection to a server may only fetch the client's cookie; with a cookie the SYN carries the data.
        var options = new List<TcpInfoOptions>();
        for (var i = 0; i < 3; i++)
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            SendInSyn(client, (IPEndPoint)listener.EndPoint, $"syn data {i}");
            await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
            var read = await connection.Transport.Input.ReadAtLeastAsync(10, Listeners.TimeoutToken());
            Assert.Equal($"syn data {i}", Encoding.ASCII.GetString(read.Buffer));
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
            Assert.True(connection.Features.Get<ITcpInfoFeature>()!.TryRead(out var info));
            options.Add(info.Options);
        }

        Assert.True(options[^1].HasFlag(TcpInfoOptions.SynData), $"options of the three connections: {string.Join(", ", options)}");
        Assert.True(TcpExtCounter("TCPFastOpenPassive") > passiveBefore);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(0x403, true)]
    public void FastOpen_needs_the_kernel_s_server_bit(int sysctl, bool enables) =>
        Assert.Equal(enables, FastOpenSysctl.EnablesServer(sysctl));

    [Fact]
    public async Task The_tcp_only_options_are_left_out_on_a_unix_socket_with_a_log_line()
    {
        var log = new LogRecorder();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(log));
        var options = new NetStreamTransportOptions { DeferAccept = TimeSpan.FromSeconds(5), FastOpen = 8, TcpInfoOnClose = true };
        var factory = new NetStreamTransportFactory(options, null, loggerFactory);

        await using var listener = await factory.BindAsync(new UnixDomainSocketEndPoint(Path.Combine(Listeners.TempDirectory(), "s")), options);

        var line = Assert.Single(log.Entries, e => e.EventId == 19);
        Assert.Contains("DeferAccept, FastOpen, TcpInfoOnClose", line.Message);
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        Assert.NotNull(connection);
    }

    /// <summary>
    /// Fast Open for servers is off in a stock kernel (<c>net.ipv4.tcp_fastopen = 1</c>, clients only): turned on here,
    /// for this network namespace, as the README's test section says. Never turned off again (tests run in parallel).
    /// </summary>
    private static void EnableFastOpenServerSide()
    {
        var value = FastOpenSysctl.Read() ?? throw new InvalidOperationException("net.ipv4.tcp_fastopen cannot be read here.");
        if (!FastOpenSysctl.EnablesServer(value))
        {
            File.WriteAllText("/proc/sys/net/ipv4/tcp_fastopen", (value | 3).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary><c>sendto(MSG_FASTOPEN)</c>: connects and sends in one call, the data in the SYN when the client has a cookie.</summary>
    private static unsafe void SendInSyn(Socket client, IPEndPoint to, string text)
    {
        const int MsgFastOpen = 0x20000000;
        Span<byte> address = stackalloc byte[16];
        address.Clear();
        BitConverter.TryWriteBytes(address, (ushort)AddressFamily.InterNetwork);
        address[2] = (byte)(to.Port >> 8);
        address[3] = (byte)to.Port;
        to.Address.TryWriteBytes(address[4..8], out _);
        var data = Encoding.ASCII.GetBytes(text);
        fixed (byte* buffer = data)
        fixed (byte* sockaddr = address)
        {
            var sent = SendTo((int)client.Handle, buffer, data.Length, MsgFastOpen, sockaddr, address.Length);
            Assert.True(sent == data.Length, $"sendto(MSG_FASTOPEN) returned {sent}, errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    private static unsafe partial nint SendTo(int socket, byte* buffer, nint length, int flags, byte* address, int addressLength);

    /// <summary>A counter of the kernel's <c>TcpExt</c> group in <c>/proc/net/netstat</c> (what <c>nstat</c> shows).</summary>
    private static long TcpExtCounter(string name)
    {
        var lines = File.ReadAllLines("/proc/net/netstat").Where(l => l.StartsWith("TcpExt:", StringComparison.Ordinal)).ToArray();
        var names = lines[0].Split(' ');
        var values = lines[1].Split(' ');
        return long.Parse(values[Array.IndexOf(names, name)], System.Globalization.CultureInfo.InvariantCulture);
    }
}
