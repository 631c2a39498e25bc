using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// A real HAProxy (Debian's package, installed on first use) in front of a NetStream server, run in the foreground with
/// a generated configuration. HAProxy cannot report a port it chose, so its frontends take ports found free by binding
/// port 0; a start that loses such a port to another process is retried with new ones.
/// </summary>
internal sealed class Haproxy : IDisposable
{
    private readonly ChildProcess _process;
    private readonly string _directory;

    private Haproxy(ChildProcess process, string directory, IReadOnlyDictionary<string, IPEndPoint> frontends)
    {
        _process = process;
        _directory = directory;
        Frontends = frontends;
    }

    /// <summary>The frontends by name (<c>name</c> on 127.0.0.1, <c>name6</c> on ::1).</summary>
    public IReadOnlyDictionary<string, IPEndPoint> Frontends { get; }

    public string Output => _process.Output;

    /// <summary>
    /// Starts HAProxy with one frontend pair (IPv4 and IPv6) per backend line: each backend is the <c>server</c> line's
    /// options towards <paramref name="backend"/>, e.g. <c>send-proxy-v2 proxy-v2-options crc32c</c>. Frontends whose
    /// name ends in <c>tls</c> take TLS with a certificate made for the run (the client sees HAProxy's TLS, the
    /// backend plain bytes and, with <c>proxy-v2-options ssl</c>, the SSL TLV).
    /// </summary>
    public static async Task<Haproxy> StartAsync(EndPoint backend, IReadOnlyDictionary<string, string> servers)
    {
        var haproxy = await DebianTools.RequireAsync("haproxy", "haproxy");
        for (var attempt = 1; ; attempt++)
        {
            var directory = Listeners.TempDirectory();
            var frontends = new Dictionary<string, IPEndPoint>();
            foreach (var name in servers.Keys)
            {
                frontends[name] = new IPEndPoint(IPAddress.Loopback, FreePort(IPAddress.Loopback));
                frontends[name + "6"] = new IPEndPoint(IPAddress.IPv6Loopback, FreePort(IPAddress.IPv6Loopback));
            }

            var config = Path.Combine(directory, "haproxy.cfg");
            var pem = Path.Combine(directory, "server.pem");
            await File.WriteAllTextAsync(pem, CertificatePem());
            await File.WriteAllTextAsync(config, Configuration(backend, servers, frontends, pem));
            var process = ChildProcess.Start(haproxy, ["-db", "-f", config]);
            if (await AllAcceptAsync(frontends.Values, process))
            {
                return new Haproxy(process, directory, frontends);
            }

            var output = process.Output;
            process.Dispose();
            Directory.Delete(directory, recursive: true);
            Assert.True(attempt < 3, $"HAProxy did not start: {output}");
        }
    }

    public void Dispose()
    {
        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private static string Configuration(EndPoint backend, IReadOnlyDictionary<string, string> servers, Dictionary<string, IPEndPoint> frontends, string pem)
    {
        var text = new System.Text.StringBuilder("""
            global
                maxconn 4096
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s

            """);
        foreach (var (name, server) in servers)
        {
            var tls = name.EndsWith("tls", StringComparison.Ordinal) ? $" ssl crt {pem}" : string.Empty;
            text.AppendLine($"frontend {name}");
            text.AppendLine($"    bind 127.0.0.1:{frontends[name].Port}{tls}");
            text.AppendLine($"    bind [::1]:{frontends[name + "6"].Port}{tls}");
            text.AppendLine("    unique-id-format %ci:%cp");
            text.AppendLine($"    default_backend {name}");
            text.AppendLine($"backend {name}");
            text.AppendLine($"    server s {(backend is UnixDomainSocketEndPoint unix ? $"unix@{unix}" : backend.ToString())} {server}");
        }

        return text.ToString();
    }

    /// <summary>A self-signed certificate and its key, in the one PEM file HAProxy's <c>crt</c> takes.</summary>
    private static string CertificatePem()
    {
        using var certificate = NetStream.Tests.Kestrel.TestCertificate.Create();
        using var key = certificate.GetECDsaPrivateKey()!;
        return certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem() + "\n";
    }

    private static int FreePort(IPAddress address)
    {
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>Whether every frontend accepts before HAProxy ends (it ends at once when a port is taken).</summary>
    private static async Task<bool> AllAcceptAsync(IEnumerable<IPEndPoint> frontends, ChildProcess process)
    {
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        foreach (var frontend in frontends)
        {
            while (true)
            {
                if (process.HasExited)
                {
                    return false;
                }

                try
                {
                    using var client = new Socket(frontend.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    await client.ConnectAsync(frontend, timeout.Token);
                    break;
                }
                catch (SocketException)
                {
                    // Not listening yet: HAProxy is starting. Polled, bounded by the timeout.
                    await Task.Delay(20, timeout.Token);
                }
            }
        }

        return true;
    }
}
