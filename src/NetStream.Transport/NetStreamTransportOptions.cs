namespace NetStream.Transport;

/// <summary>
/// Options of the NetStream transport: the listen backlog, the socket options a stream server
/// inherits from its stream socket, and the buffering of each connection.
/// Bound from the <c>NetStream</c> configuration section and from code; validated at start-up.
/// </summary>
public sealed class NetStreamTransportOptions
{
    /// <summary>The configuration section the options are bound from: <c>NetStream</c>.</summary>
    public const string SectionName = "NetStream";

    /// <summary>
    /// The <c>listen(2)</c> backlog. Default <see langword="null"/>: the kernel's <c>SOMAXCONN</c> as
    /// <c>/proc/sys/net/core/somaxconn</c> reports it (4096 if it cannot be read). Must be positive.
    /// </summary>
    public int? Backlog { get; set; }

    /// <summary>Sets <c>TCP_NODELAY</c> on each accepted TCP socket. Default <see langword="true"/>.</summary>
    public bool NoDelay { get; set; } = true;

    /// <summary>TCP keep-alive of each accepted TCP socket. Default: off, kernel timings.</summary>
    public KeepAliveOptions KeepAlive { get; set; } = new();

    /// <summary>Sets <c>TCP_CORK</c> on each accepted TCP socket. Default <see langword="false"/>.</summary>
    public bool Cork { get; set; }

    /// <summary>Sets <c>SO_OOBINLINE</c> on each accepted socket. Default <see langword="false"/>.</summary>
    public bool OobInline { get; set; }

    /// <summary><c>SO_RCVBUF</c> in bytes, set on the listening socket so accepted sockets inherit it. Default <see langword="null"/>: the kernel's.</summary>
    public int? ReceiveBufferSize { get; set; }

    /// <summary><c>SO_SNDBUF</c> in bytes, set on the listening socket so accepted sockets inherit it. Default <see langword="null"/>: the kernel's.</summary>
    public int? SendBufferSize { get; set; }

    /// <summary>
    /// <c>SO_LINGER</c> of each accepted socket on a graceful close: the close waits, without blocking a thread, up to
    /// this long for the peer to take and acknowledge all that was written, then resets the connection. Default
    /// <see langword="null"/>: the kernel's (once NetStream has handed the last output to the kernel, the kernel sends
    /// it in the background). Zero resets at once; an abort always does. NetStream times it to the millisecond; the
    /// kernel's own <c>SO_LINGER</c> value, which counts whole seconds, is rounded up (0.5 s is 1 s, never 0).
    /// </summary>
    public TimeSpan? Linger { get; set; }

    /// <summary>
    /// The longest a graceful close (the application completed its output, or disposed the connection) waits for the
    /// peer to take the output NetStream still holds; past it the connection is reset, so that a peer that never
    /// reads cannot keep a connection, and the limits' slots it holds, for good. <see cref="Linger"/>, when set,
    /// bounds the close instead. Default 30 seconds; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.
    /// </summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <c>SO_REUSEADDR</c> on the listening TCP socket. Default <see langword="true"/>; <see langword="false"/> is refused at
    /// bind, because the .NET runtime sets it on every TCP socket it binds.
    /// </summary>
    public bool ReuseAddress { get; set; } = true;

    /// <summary>
    /// <c>SO_REUSEPORT</c> on the listening TCP socket, so several processes or listeners can share one port
    /// and the kernel balances connections between them. Default <see langword="false"/>.
    /// </summary>
    public bool ReusePort { get; set; }

    /// <summary>
    /// Listening sockets per TCP endpoint: more than one makes an <c>SO_REUSEPORT</c> group, each socket with its own
    /// accept loop (with the <see cref="NetStreamEngine.Epoll"/> engine, spread over its loops), and the kernel spreads
    /// new connections over them by their addresses' hash, so accepting scales with cores. Each socket has its own
    /// backlog of <see cref="Backlog"/>. Unix sockets and inherited descriptors have one. Default 1; 1 to 256.
    /// </summary>
    public int AcceptShards { get; set; } = 1;

    /// <summary>
    /// The octal file mode of a Unix socket file after bind, for example <c>0660</c>.
    /// Default <see langword="null"/>: what the process umask leaves.
    /// </summary>
    public string? UnixSocketFileMode { get; set; }

    /// <summary>
    /// Bytes buffered from the peer before the transport stops reading (back-pressure).
    /// Default 1 MiB; <see langword="null"/> or 0 means no limit.
    /// </summary>
    public long? MaxReadBufferSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Bytes the application may write ahead of the socket before its flush waits (back-pressure).
    /// Default 64 KiB; <see langword="null"/> or 0 means no limit.
    /// </summary>
    public long? MaxWriteBufferSize { get; set; } = 64 * 1024;

    /// <summary>
    /// Waits until data arrives before renting a receive buffer, so idle connections hold no buffer.
    /// Default <see langword="true"/>.
    /// </summary>
    public bool WaitForDataBeforeAllocatingBuffer { get; set; } = true;

    /// <summary>
    /// How many I/O queues run the socket continuations. Default as Kestrel's Sockets transport: the processor count,
    /// at most 16, and half the processors on a machine with more than 32. 0 runs them inline on the socket's
    /// completion thread.
    /// </summary>
    public int IOQueueCount { get; set; } = DefaultIOQueueCount(Environment.ProcessorCount);

    /// <summary>
    /// File descriptors an accept loop keeps free for the rest of the process: it stops accepting while one more
    /// connection would leave fewer than this under the process's <c>RLIMIT_NOFILE</c> (<c>ulimit -n</c>), and resumes as
    /// descriptors are closed; the kernel's backlog holds new peers meanwhile. A .NET process out of descriptors cannot
    /// load an assembly or start a thread, and dies of it. Default <see langword="null"/>: a tenth of the limit, at least
    /// 64 and at most 1024 (and at most half the limit). Must be below the limit. 0 turns the reserve off (accept until EMFILE, then back off).
    /// </summary>
    public int? DescriptorReserve { get; set; }

    /// <summary>
    /// How bytes move between the sockets and the pipes. Default <see cref="NetStreamEngine.Epoll"/>: on the benchmark
    /// harness it serves keep-alive HTTP/1.1 about a third faster than <see cref="NetStreamEngine.Sockets"/>, and no
    /// scenario slower (README, Performance).
    /// </summary>
    public NetStreamEngine Engine { get; set; } = DefaultEngine;

    /// <summary>
    /// The loop threads of the <see cref="NetStreamEngine.Epoll"/> engine, each with its own epoll instance. Listeners
    /// that ask for the same number share one set of loops for the life of the process. Default: the processor count.
    /// Must be 1 to 256.
    /// </summary>
    public int EngineThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Runs the application's code on the transport's own threads (the epoll loop, or the socket's completion thread)
    /// instead of handing it to the thread pool: faster for short, never-blocking handlers; an application that blocks
    /// stalls every connection of that thread. Default <see langword="false"/>, as Kestrel's option of the same name.
    /// </summary>
    public bool UnsafePreferInlineScheduling { get; set; }

    /// <summary>
    /// <c>TCP_DEFER_ACCEPT</c>: the kernel hands a connection over only once its first data has arrived (or this time
    /// has passed; then it is handed over empty), so a peer that connects and says nothing costs no wake-up and no
    /// connection object. Breaks protocols where the server speaks first (SMTP, FTP, MySQL): their clients wait, and
    /// only the time limit lets them in. The kernel counts in SYN-ACK retransmissions, so it rounds the time up.
    /// TCP only. Default <see langword="null"/>: off.
    /// </summary>
    public TimeSpan? DeferAccept { get; set; }

    /// <summary>
    /// <c>TCP_FASTOPEN</c> on the listening socket, with this queue length (connections in the handshake that carry
    /// data): a client that has a Fast Open cookie sends its first bytes in its SYN, and they reach the application with
    /// the connection, a round trip early. Needs the server side enabled in the kernel (<c>net.ipv4.tcp_fastopen</c>
    /// with bit 2 set, e.g. 3); otherwise start-up fails saying so. Fast Open data can be replayed by the network: only
    /// for requests that are safe to repeat. TCP only. Default <see langword="null"/>: off.
    /// </summary>
    public int? FastOpen { get; set; }

    /// <summary>
    /// Records each TCP connection's final round-trip time and retransmissions, read with <c>TCP_INFO</c> as it closes,
    /// in the histograms <c>netstream.connection.rtt</c> and <c>netstream.connection.retransmits</c>: one system call per
    /// connection. Default <see langword="false"/>. Any time, <see cref="ITcpInfoFeature"/> reads a live connection's.
    /// </summary>
    public bool TcpInfoOnClose { get; set; }

    /// <summary>
    /// Serves each TCP connection on the epoll loop of the CPU that received its packets: the loops are pinned one to
    /// each CPU the process may use, and an accepted connection goes to the loop of its <c>SO_INCOMING_CPU</c>, so the
    /// kernel's receive work and NetStream's share a CPU's caches. Pays on many cores with multi-queue NICs (RSS/RPS
    /// spread flows over CPUs); on a small machine it mostly takes the scheduler's freedom to move the loops.
    /// Needs <see cref="Engine"/> <see cref="NetStreamEngine.Epoll"/>. TCP only. Default <see langword="false"/>.
    /// </summary>
    public bool IncomingCpu { get; set; }

    /// <summary>Options of the <c>accepted</c> hook chain and its built-in hooks.</summary>
    public HookOptions Hooks { get; set; } = new();

    /// <summary>Listener handoff to the next process at a restart. Default: off.</summary>
    public HandoffOptions Handoff { get; set; } = new();

    /// <summary>The PROXY protocol receiver, which runs before the <c>accepted</c> hooks. Default: off.</summary>
    public ProxyProtocol.ProxyProtocolOptions ProxyProtocol { get; set; } = new();


    /// <summary>The default <see cref="Engine"/>. Settable by the test suite, which runs once per engine.</summary>
    internal static NetStreamEngine DefaultEngine { get; set; } = NetStreamEngine.Epoll;

    /// <summary>The default <see cref="IOQueueCount"/> on a machine with <paramref name="processors"/> processors.</summary>
    internal static int DefaultIOQueueCount(int processors) => processors > 32 ? processors / 2 : Math.Min(processors, 16);

    /// <summary>Returns a deep copy, so an endpoint can override options without touching the shared ones.</summary>
    internal NetStreamTransportOptions Clone()
    {
        var copy = (NetStreamTransportOptions)MemberwiseClone();
        copy.KeepAlive = KeepAlive.Clone();
        copy.Hooks = Hooks.Clone();
        copy.ProxyProtocol = ProxyProtocol.Clone();
        copy.Handoff = Handoff.Clone();
        return copy;
    }
}

/// <summary>TCP keep-alive of accepted sockets (<c>SO_KEEPALIVE</c>, <c>TCP_KEEPIDLE</c>, <c>TCP_KEEPINTVL</c>, <c>TCP_KEEPCNT</c>).</summary>
public sealed class KeepAliveOptions
{
    /// <summary>Sets <c>SO_KEEPALIVE</c>. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Idle time before the first probe (<c>TCP_KEEPIDLE</c>, whole seconds). Default <see langword="null"/>: the kernel's.</summary>
    public TimeSpan? Idle { get; set; }

    /// <summary>Time between probes (<c>TCP_KEEPINTVL</c>, whole seconds). Default <see langword="null"/>: the kernel's.</summary>
    public TimeSpan? Interval { get; set; }

    /// <summary>Unanswered probes before the connection is dropped (<c>TCP_KEEPCNT</c>). Default <see langword="null"/>: the kernel's.</summary>
    public int? Count { get; set; }

    internal KeepAliveOptions Clone() => (KeepAliveOptions)MemberwiseClone();
}

/// <summary>Options of the <c>accepted</c> hook chain and of its built-in hooks (IP lists, connection limits).</summary>
public sealed class HookOptions
{
    /// <summary>
    /// The longest the whole <c>accepted</c> chain may take on one connection; past it the connection is
    /// refused. Default 10 seconds; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.
    /// </summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// If not empty, only peers in these networks are served: CIDR such as <c>10.0.0.0/8</c> or <c>fd00::/8</c>, or a
    /// single address. Unix socket peers have no address and are not filtered. Default empty: everyone.
    /// </summary>
    public List<string> Allow { get; } = [];

    /// <summary>Peers in these networks are refused (RST), even if <see cref="Allow"/> lists them. Default empty.</summary>
    public List<string> Deny { get; } = [];

    /// <summary>
    /// Most connections open at once from one remote IP address; beyond it new ones are refused at once (RST).
    /// Default <see langword="null"/>: no limit.
    /// </summary>
    public int? MaxConnectionsPerIp { get; set; }

    /// <summary>
    /// Most connections open at once on one endpoint; beyond it new ones are refused at once (RST), not queued.
    /// Default <see langword="null"/>: no limit.
    /// </summary>
    public int? MaxConnectionsPerEndpoint { get; set; }

    internal HookOptions Clone()
    {
        var copy = new HookOptions
        {
            Timeout = Timeout,
            MaxConnectionsPerIp = MaxConnectionsPerIp,
            MaxConnectionsPerEndpoint = MaxConnectionsPerEndpoint,
        };
        copy.Allow.AddRange(Allow);
        copy.Deny.AddRange(Deny);
        return copy;
    }
}

/// <summary>The I/O engine that moves bytes between sockets and pipes.</summary>
public enum NetStreamEngine
{
    /// <summary><see cref="System.Net.Sockets.Socket"/>'s asynchronous operations (the runtime's epoll loop).</summary>
    Sockets,

    /// <summary>
    /// NetStream's own epoll loops (<see cref="NetStreamTransportOptions.EngineThreads"/>): edge-triggered readiness,
    /// receives straight into the connection's input, one gathered send per connection per loop pass.
    /// </summary>
    Epoll,
}
