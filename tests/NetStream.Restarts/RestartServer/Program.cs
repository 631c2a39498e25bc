// Kestrel on NetStream (HTTP/1.1 and HTTP/2 endpoints from configuration: --Kestrel:Endpoints:...) and the hosted
// server's echo endpoints (--NetStream:Endpoints:...), replaced under load by run.sh. "/" answers at once, "/slow"
// after 2 s: a request that is still running when its process is told to stop.
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

var builder = WebApplication.CreateBuilder(args);
builder.WebHost.UseNetStream();
builder.Services.AddNetStreamServer(server => server.Run(async connection =>
    await connection.Transport.Input.CopyToAsync(connection.Transport.Output)));
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

var app = builder.Build();
app.MapGet("/", () => "ok");
app.MapGet("/slow", async () =>
{
    await Task.Delay(TimeSpan.FromSeconds(2));
    return "slow";
});
app.Run();
