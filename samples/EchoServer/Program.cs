using EchoServer;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

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

await builder.Build().RunAsync();
