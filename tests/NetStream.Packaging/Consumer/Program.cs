using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Mvc;

// Kestrel on NetStream (HTTP), and NetStream's hosted server with one echo endpoint, as the README shows them.
// NetStream is Linux-only ([SupportedOSPlatform("linux")]): the guard keeps the app building without CA1416 warnings,
// and running on Kestrel's own transport on a developer's Windows or macOS machine.
var builder = WebApplication.CreateBuilder(args);
if (OperatingSystem.IsLinux())
{
    builder.WebHost.UseNetStream();
    builder.Services.AddNetStreamServer(server => server.Run(Echo));
}

var app = builder.Build();
app.MapGet("/", ([FromServices] IConnectionListenerFactory transport) => $"served by {transport.GetType().FullName}");
app.Run();

static async Task Echo(ConnectionContext connection)
{
    await connection.Transport.Input.CopyToAsync(connection.Transport.Output);
}
