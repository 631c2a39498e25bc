// The benchmark server: the same Kestrel app on either transport.
//
//   --transport netstream|sockets   NetStream (UseNetStream) or Kestrel's default Sockets transport
//   --mode http|echo                "Hello, World!" plaintext over HTTP/1.1, or a raw ConnectionHandler echo
//   --port N                        TCP port on 127.0.0.1 (0 or absent: no TCP endpoint)
//   --unix PATH                     also listen on this Unix socket
//
// Other command-line keys reach configuration as usual (e.g. --NetStream:NoDelay=false).
using System.Buffers;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Connections;

var builder = WebApplication.CreateSlimBuilder(args);
var config = builder.Configuration;

string transport = (config["transport"] ?? "netstream").ToLowerInvariant();
string mode = (config["mode"] ?? "http").ToLowerInvariant();
int port = int.Parse(config["port"] ?? "0", CultureInfo.InvariantCulture);
string? unixPath = config["unix"];

if (transport is not ("netstream" or "sockets") || mode is not ("http" or "echo") || (port <= 0 && string.IsNullOrEmpty(unixPath)))
{
    await Console.Error.WriteLineAsync("usage: BenchServer --transport netstream|sockets --mode http|echo [--port N] [--unix PATH]");
    return 2;
}

builder.Logging.ClearProviders();
if (transport == "netstream")
{
    builder.WebHost.UseNetStream();
}

builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    void Configure(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen)
    {
        if (mode == "echo")
        {
            listen.UseConnectionHandler<EchoConnectionHandler>();
        }
    }

    if (port > 0)
    {
        kestrel.Listen(IPAddress.Loopback, port, Configure);
    }

    if (!string.IsNullOrEmpty(unixPath))
    {
        kestrel.ListenUnixSocket(unixPath, Configure);
    }
});

var app = builder.Build();
if (mode == "http")
{
    ReadOnlyMemory<byte> body = "Hello, World!"u8.ToArray();
    app.Run(async context =>
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/plain";
        response.ContentLength = body.Length;
        await response.BodyWriter.WriteAsync(body).ConfigureAwait(false);
    });
}

await app.RunAsync().ConfigureAwait(false);
return 0;

/// <summary>Echoes every byte back: the input pipe copied to the output pipe, one flush per read.</summary>
internal sealed class EchoConnectionHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    output.Write(segment.Span);
                }

                input.AdvanceTo(buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }

                var flush = await output.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (ConnectionResetException)
        {
            // The client went away: the end of a benchmark run.
        }
        catch (ConnectionAbortedException)
        {
        }
    }
}
