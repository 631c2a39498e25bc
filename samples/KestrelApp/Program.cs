// A minimal Kestrel app on NetStream:
//   http://127.0.0.1:5080/         "Hello" and who the server thinks you are
//   http://127.0.0.1:5080/healthz  NetStream's health check (Kubernetes probes)
//   127.0.0.1:5081                 the same app behind a load balancer that speaks the PROXY protocol (v1 or v2)
// The allow list, the per-IP limit and the endpoints are in appsettings.json; every key can be overridden with
// --Key=Value (e.g. --NetStream:Hooks:MaxConnectionsPerIp=10). Metrics: dotnet-counters monitor -n KestrelApp --counters NetStream,
// or OpenTelemetry's console exporter with --Sample:OpenTelemetryConsole=true (every 10 s).
using Microsoft.AspNetCore.Hosting;
using OpenTelemetry.Metrics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

var builder = WebApplication.CreateBuilder(args);
builder.WebHost.UseNetStream();
builder.Services.AddNetStreamHealthChecks();
if (builder.Configuration.GetValue<bool>("Sample:OpenTelemetryConsole"))
{
    // Any OpenTelemetry exporter takes NetStream's meter by its name; Kestrel's own sits beside it.
    builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
        .AddMeter("NetStream", "Microsoft.AspNetCore.Server.Kestrel")
        .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 10_000));
}

builder.WebHost.ConfigureKestrel((context, kestrel) =>
{
    // The endpoint that only the load balancer reaches: its PROXY header says who the client is.
    var proxied = context.Configuration.GetValue("Sample:ProxyPort", 5081);
    kestrel.Listen(System.Net.IPAddress.Loopback, proxied, listen => listen.UseProxyProtocol(o => o.TrustedProxies.Add("127.0.0.1")));
});

var app = builder.Build();
app.MapGet("/", (HttpContext http) => $"Hello from NetStream; you are {http.Connection.RemoteIpAddress}:{http.Connection.RemotePort}\n");
app.MapHealthChecks("/healthz");
app.Run();
