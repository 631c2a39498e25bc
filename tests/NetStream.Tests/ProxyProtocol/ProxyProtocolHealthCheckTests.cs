using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Connections;
using NetStream.Tests.Hosting;
using NetStream.Tests.Infrastructure;
using NetStream.Transport.ProxyProtocol;

namespace NetStream.Tests.ProxyProtocol;

/// <summary>
/// A LOCAL header with an address block and TLVs, as an AWS NLB health check sends (Envoy crashed on one): served with
/// the real endpoints; and with a CRC32C TLV, refused for any single bit flipped, over a real connection.
/// </summary>
public sealed class ProxyProtocolHealthCheckTests
{
    private static readonly IPEndPoint Client = IPEndPoint.Parse("192.0.2.10:40000");
    private static readonly IPEndPoint Balancer = IPEndPoint.Parse("192.0.2.20:443");

    [Fact]
    public async Task A_local_header_with_an_address_block_and_tlvs_is_served_with_the_real_endpoints()
    {
        await using var host = await StartAsync();
        var header = ProxyV2Builder.Local([ProxyV2Builder.AwsVpcEndpointTlv("vpce-0123456789abcdef0")], crc32c: true, source: Client, destination: Balancer);

        using var client = await Listeners.ConnectAsync(host.EndPoint);
        var self = client.LocalEndPoint!.ToString();
        await client.SendAsync((byte[])[.. header, .. "ping"u8]);
        client.Shutdown(SocketShutdown.Send);

        Assert.Equal($"{self}|vpce-0123456789abcdef0\nping", Encoding.ASCII.GetString(await Listeners.ReceiveAsync(client, 4096)));
    }

    [Fact]
    public async Task Any_single_bit_flipped_in_a_crc_carrying_local_header_is_refused()
    {
        await using var host = await StartAsync();
        using var refusals = new RefusalRecorder(host.Host.Services);
        var header = ProxyV2Builder.Local([ProxyV2Builder.AwsVpcEndpointTlv("vpce-0123456789abcdef0")], crc32c: true, source: Client, destination: Balancer);

        // Past the signature (a flip there is no header at all, refused as proxy_missing) and the length (a longer
        // one waits for bytes that never come: refused at the header timeout, too slow to try for every bit here).
        var served = new List<int>();
        for (var bit = 16 * 8; bit < header.Length * 8; bit++)
        {
            var flipped = (byte[])header.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            if (await EchoClient.HowTurnedAwayAsync(host.EndPoint, flipped) is null)
            {
                served.Add(bit);
            }
        }

        // All but the CRC TLV's own type byte (the builder puts it first, after the 12-byte address block): flipped to a
        // type nobody knows, the header no longer carries a CRC, which the protocol allows; the CRC cannot cover the
        // byte that says it is there.
        var crcType = (16 + 12) * 8;
        Assert.True(served.All(bit => bit >= crcType && bit < crcType + 8), $"Served with bits flipped: {string.Join(", ", served)} of {header.Length * 8}");
        Assert.False(refusals.IsEmpty);
    }

    private static Task<EchoHost> StartAsync()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ProxyProtocol:Mode"] = "Require";
        settings["NetStream:ProxyProtocol:TrustedProxies:0"] = "127.0.0.1";
        return EchoHost.StartAsync(settings, server => server.Run(async connection =>
        {
            var proxy = connection.Features.Get<IProxyProtocolFeature>();
            await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes($"{connection.RemoteEndPoint}|{proxy?.AwsVpcEndpointId}\n"));
            await TestEcho.EchoAsync(connection);
        }));
    }
}
