// HTTP/2 (prior knowledge, h2c) load for the restart script: `H2Client <url> <connections> <streams per connection>
// <seconds>`. Each connection is its own SocketsHttpHandler, kept busy by as many concurrent requests; a GOAWAY makes
// the handler open a new connection and retry the requests the server did not process (RFC 9113, 6.8), as real
// clients do. Prints one line: "h2client: ok=N errors=N non2xx=N bad=N connections=N"; the first errors go to stderr.
using System.Net;
using System.Net.Sockets;

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: H2Client <url> <connections> <streams per connection> <seconds>");
    return 2;
}

var url = new Uri(args[0]);
var connectionCount = int.Parse(args[1]);
var streamsPerConnection = int.Parse(args[2]);
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(double.Parse(args[3])));

long ok = 0, errors = 0, non2xx = 0, bad = 0, connections = 0;
var reportedErrors = 0;

var workers = new List<Task>();
var clients = new List<HttpClient>();
for (var c = 0; c < connectionCount; c++)
{
    var handler = new SocketsHttpHandler
    {
        ConnectCallback = async (context, token) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, token);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            Interlocked.Increment(ref connections);
            return new NetworkStream(socket, ownsSocket: true);
        },
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
    };
    var client = new HttpClient(handler)
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(10),
    };
    clients.Add(client);
    for (var s = 0; s < streamsPerConnection; s++)
    {
        workers.Add(Task.Run(() => RequestLoop(client)));
    }
}

await Task.WhenAll(workers);
foreach (var client in clients)
{
    client.Dispose();
}

Console.WriteLine($"h2client: ok={ok} errors={errors} non2xx={non2xx} bad={bad} connections={connections}");
return 0;

async Task RequestLoop(HttpClient client)
{
    while (!stop.IsCancellationRequested)
    {
        try
        {
            // Not cancelled by `stop`: a request that has started runs to its end, so every one is counted.
            using var response = await client.GetAsync(url, CancellationToken.None);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
            if (!response.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref non2xx);
            }
            else if (body != "ok")
            {
                Interlocked.Increment(ref bad);
            }
            else
            {
                Interlocked.Increment(ref ok);
            }
        }
        catch (Exception error) when (error is HttpRequestException or TaskCanceledException or IOException)
        {
            Interlocked.Increment(ref errors);
            if (Interlocked.Increment(ref reportedErrors) <= 5)
            {
                Console.Error.WriteLine($"h2client: {error.GetType().Name}: {error.Message} {error.InnerException?.Message}");
            }
        }
    }
}
