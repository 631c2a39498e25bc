using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using NetStream.Tests.Infrastructure;
using Xunit.Abstractions;

namespace NetStream.Tests.Kestrel;

/// <summary>
/// The KestrelApp sample, run as a user runs it (its own process, its appsettings.json), on ports the kernel picks:
/// it serves, its health check answers, and its PROXY protocol endpoint sees the client the header names.
/// </summary>
public sealed partial class KestrelAppSampleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_sample_serves_reports_healthy_and_reads_proxy_headers_on_its_second_endpoint()
    {
        var dll = typeof(KestrelAppSampleTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "KestrelAppPath").Value!;
        using var app = ChildProcess.Start(
            EchoServerSample.DotnetHost(),
            [dll, "--Kestrel:Endpoints:Http:Url=http://127.0.0.1:0", "--Sample:ProxyPort=0"],
            new Dictionary<string, string>
            {
                ["Logging__Console__FormatterName"] = "simple",
                ["Logging__Console__FormatterOptions__SingleLine"] = "true",
                ["Logging__Console__FormatterOptions__ColorBehavior"] = "Disabled",
            });
        try
        {
            await app.WaitForLinesAsync(l => Listening().IsMatch(l), 2, Listeners.Timeout);
            var ports = Listening().Matches(app.Output).Select(m => int.Parse(m.Groups[1].Value)).Distinct().ToArray();
            Assert.Equal(2, ports.Length);

            // The plain endpoint answers a plain request; the other one wants a PROXY header first.
            var answers = new List<string>();
            foreach (var port in ports)
            {
                answers.Add(await RequestAsync(port, "PROXY TCP4 192.0.2.7 127.0.0.1 40000 80\r\n", "/"));
            }

            var proxied = ports[answers.FindIndex(a => a.Contains("you are 192.0.2.7:40000"))];
            var plain = ports.Single(p => p != proxied);
            Assert.Contains("you are 127.0.0.1:", await RequestAsync(plain, string.Empty, "/"));
            Assert.Contains("\r\nHealthy\r\n", await RequestAsync(plain, string.Empty, "/healthz"));
        }
        finally
        {
            output.WriteLine(app.Output);
        }
    }

    private static async Task<string> RequestAsync(int port, string preamble, string path)
    {
        using var client = await Listeners.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        await client.SendAsync(Encoding.ASCII.GetBytes($"{preamble}GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        return Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 1 << 16)).TrimEnd();
    }

    [GeneratedRegex(@"NetStream \(\w+\) listening on 127\.0\.0\.1:(\d+),")]
    private static partial Regex Listening();
}
