using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;

namespace NetStream.Tests.Kernel;

public sealed class TcpInfoTests
{
    [Fact]
    public async Task A_tcp_connection_reads_what_the_kernel_counted_of_it()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        var tcp = connection.Features.Get<ITcpInfoFeature>();
        Assert.NotNull(tcp);

        await client.SendAsync(new byte[1000]);
        var received = 0L;
        while (received < 1000)
        {
            var read = await connection.Transport.Input.ReadAsync(Listeners.TimeoutToken());
            received += read.Buffer.Length;
            connection.Transport.Input.AdvanceTo(read.Buffer.End);
        }

        await connection.Transport.Output.WriteAsync(new byte[3000], Listeners.TimeoutToken());
        Assert.Equal(3000, (await Listeners.ReceiveAsync(client, 3000)).Length);
        // The client's kernel acknowledges what it received on its own time: wait for the acknowledgement to arrive.
        var info = await WaitForAsync(tcp, i => i.BytesAcked == 3000);

        Assert.Equal(TcpConnectionState.Established, info.State);
        Assert.Equal(1000, info.BytesReceived);
        Assert.Equal(3000, info.BytesSent);
        Assert.Equal(0, info.Unacked);
        Assert.Equal(0, info.TotalRetransmits);
        Assert.InRange(info.RoundTripTime, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1));
        Assert.InRange(info.SendMss, 536, 65536);
        Assert.InRange(info.ReceiveMss, 536, 65536);
        Assert.True(info.CongestionWindow > 0);
        Assert.True(info.Options.HasFlag(TcpInfoOptions.Sack), $"options: {info.Options}");

        client.Shutdown(SocketShutdown.Send);
        var closed = await WaitForAsync(tcp, i => i.State == TcpConnectionState.CloseWait);
        Assert.Equal(1001, closed.BytesReceived); // the FIN takes one in the sequence space the kernel counts
    }

    [Fact]
    public async Task A_closed_connection_reads_nothing()
    {
        await using var listener = await Listeners.BindLoopbackAsync();
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
        var tcp = connection.Features.Get<ITcpInfoFeature>()!;

        await connection.DisposeAsync();

        Assert.False(tcp.TryRead(out var info));
        Assert.Equal(default, info);
    }

    [Fact]
    public async Task A_unix_socket_connection_has_no_tcp_info()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "s");
        await using var listener = await Listeners.BindAsync(new UnixDomainSocketEndPoint(path));
        using var client = await Listeners.ConnectAsync(listener.EndPoint);
        await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;

        Assert.Null(connection.Features.Get<ITcpInfoFeature>());
        Assert.DoesNotContain(connection.Features, feature => feature.Key == typeof(ITcpInfoFeature));
    }

    [Fact]
    public async Task Kestrel_requests_read_their_connection_s_tcp_info()
    {
        using var timeout = KestrelApp.Timeout();
        await using var app = await KestrelApp.StartOnLoopbackAsync(
            web => web.MapGet("/", (HttpContext context) =>
                context.Features.Get<ITcpInfoFeature>() is { } tcp && tcp.TryRead(out var info)
                    ? PlainText.WriteAsync(context, $"{info.State} {info.BytesReceived}")
                    : PlainText.WriteAsync(context, "none")),
            timeout.Token);
        using var http = new HttpClient { BaseAddress = app.BaseAddress };

        var body = await http.GetStringAsync("/", timeout.Token);

        var parts = body.Split(' ');
        Assert.Equal("Established", parts[0]);
        Assert.True(long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) > 0, body);
    }

    [Fact]
    public async Task TcpInfoOnClose_records_each_connection_s_rtt_and_retransmits_as_it_closes()
    {
        await using var listener = await Listeners.BindLoopbackAsync(o => o.TcpInfoOnClose = true);
        var port = ((IPEndPoint)listener.EndPoint).Port;
        var recorded = new ConcurrentQueue<(string Instrument, double Value)>();
        using var meterListener = new MeterListener();
        meterListener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "NetStream" && instrument.Name is "netstream.connection.rtt" or "netstream.connection.retransmits")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            foreach (var tag in tags)
            {
                // Listeners made without a container share one meter: this listener's by its port.
                if (tag.Key == "server.port" && tag.Value is int p && p == port)
                {
                    recorded.Enqueue((instrument.Name, value));
                }
            }
        }

        meterListener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        meterListener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        meterListener.Start();

        using (var client = await Listeners.ConnectAsync(listener.EndPoint))
        {
            await using var connection = (await listener.AcceptAsync(Listeners.TimeoutToken()))!;
            await connection.Transport.Output.WriteAsync("hello"u8.ToArray(), Listeners.TimeoutToken());
            Assert.Equal(5, (await Listeners.ReceiveAsync(client, 5)).Length);
        }

        await InstrumentRecorder.WaitUntilAsync(() => recorded.Count >= 2);
        var rtt = Assert.Single(recorded, m => m.Instrument == "netstream.connection.rtt");
        Assert.InRange(rtt.Value, 1e-7, 1);
        Assert.Equal(0, Assert.Single(recorded, m => m.Instrument == "netstream.connection.retransmits").Value);
    }

    [Fact]
    public void The_kernel_s_struct_is_read_at_its_documented_offsets()
    {
        var raw = new byte[216];
        raw[0] = 1;           // tcpi_state: TCP_ESTABLISHED
        raw[2] = 3;           // tcpi_retransmits
        raw[5] = 0x20 | 0x2;  // tcpi_options: SYN_DATA | SACK
        BitConverter.TryWriteBytes(raw.AsSpan(16), 1448u);      // tcpi_snd_mss
        BitConverter.TryWriteBytes(raw.AsSpan(68), 250u);       // tcpi_rtt, µs
        BitConverter.TryWriteBytes(raw.AsSpan(100), 7u);        // tcpi_total_retrans
        BitConverter.TryWriteBytes(raw.AsSpan(128), 123456UL);  // tcpi_bytes_received
        BitConverter.TryWriteBytes(raw.AsSpan(148), uint.MaxValue); // tcpi_min_rtt: none measured yet
        BitConverter.TryWriteBytes(raw.AsSpan(160), 99UL);      // tcpi_delivery_rate

        var info = NetStream.Transport.Internal.TcpInfoReader.Parse(raw);

        Assert.Equal(
            new TcpInfo
            {
                State = TcpConnectionState.Established,
                Retransmits = 3,
                Options = TcpInfoOptions.SynData | TcpInfoOptions.Sack,
                SendMss = 1448,
                RoundTripTime = TimeSpan.FromMicroseconds(250),
                TotalRetransmits = 7,
                BytesReceived = 123456,
                DeliveryRate = 99,
            },
            info);
    }

    private static async Task<TcpInfo> WaitForAsync(ITcpInfoFeature tcp, Func<TcpInfo, bool> condition)
    {
        TcpInfo info = default;
        await InstrumentRecorder.WaitUntilAsync(() => tcp.TryRead(out info) && condition(info));
        return info;
    }
}
