using EchoServer;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

// Endpoints and options come from appsettings.json's NetStream section; override any of them on the
// command line, e.g. --NetStream:Endpoints:Echo:Url=tcp://127.0.0.1:9000
// appsettings.json is read from beside the program, wherever it is started from.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Services
    .AddNetStreamServer(server => server.UseConnectionHandler<EchoHandler>())
    .AddAcceptedHook<PeerLogger>();

// The NetStream meter's measurements on the console once enabled, e.g. --Metrics:EnabledMetrics:NetStream=true
// (a debugging aid; in production read the meter with dotnet-counters or an OpenTelemetry exporter).
builder.Metrics.AddDebugConsole();

try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (Exception e) when (e is OptionsValidationException or InvalidOperationException or IOException)
{
    // Start-up failed (a bad option, an endpoint that cannot be bound), and the host logged why: exit with a status
    // that says so, not the runtime's abort of an unhandled exception (status 134, and maybe a core dump).
    Console.Error.WriteLine($"EchoServer did not start: {e.Message}");
    return 1;
}
