using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NetStream.Hosting.Internal;
using NetStream.Transport;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// A generic host running the hosted NetStream server with in-memory configuration and a given connection pipeline
/// (echo by default). Endpoints bind port 0; <see cref="EndPoints"/> holds the ports the kernel chose.
/// </summary>
internal sealed class EchoHost : IAsyncDisposable
{
    private int _stopped;

    private EchoHost(IHost host, IReadOnlyList<EndPoint> endPoints)
    {
        Host = host;
        EndPoints = endPoints;
    }

    public IHost Host { get; }

    /// <summary>The bound endpoints, in configuration order.</summary>
    public IReadOnlyList<EndPoint> EndPoints { get; }

    public EndPoint EndPoint => EndPoints[0];

    /// <summary>Starts a host with one endpoint per URL, named E0, E1, ...</summary>
    public static Task<EchoHost> StartAsync(params string[] urls) => StartAsync(Endpoints(urls));

    /// <summary>The configuration of one endpoint per URL, named E0, E1, ...</summary>
    public static Dictionary<string, string?> Endpoints(params string[] urls)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < urls.Length; i++)
        {
            settings[$"NetStream:Endpoints:E{i}:Url"] = urls[i];
        }

        return settings;
    }

    public static IHost Build(IDictionary<string, string?> settings, Action<IConnectionBuilder>? pipeline = null, Action<NetStreamBuilder>? netStream = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        var server = builder.Services.AddNetStreamServer(pipeline ?? (server => server.UseConnectionHandler<EchoServer.EchoHandler>()));
        netStream?.Invoke(server);
        return builder.Build();
    }

    public static async Task<EchoHost> StartAsync(IDictionary<string, string?> settings, Action<IConnectionBuilder>? pipeline = null, Action<NetStreamBuilder>? netStream = null)
    {
        var host = Build(settings, pipeline, netStream);
        try
        {
            using var timeout = new CancellationTokenSource(Listeners.Timeout);
            await host.StartAsync(timeout.Token);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        var server = host.Services.GetServices<IHostedService>().OfType<NetStreamServer>().Single();
        return new EchoHost(host, server.BoundEndPoints);
    }

    /// <summary>Starts a host that must fail to start, and returns why (a lone inner exception unwrapped).</summary>
    public static async Task<Exception> StartFailsAsync(IDictionary<string, string?> settings)
    {
        using var host = Build(settings);
        using var timeout = new CancellationTokenSource(Listeners.Timeout);
        var error = await Record.ExceptionAsync(() => host.StartAsync(timeout.Token));
        Assert.NotNull(error);
        while (error is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            error = aggregate.InnerExceptions[0];
        }

        return error;
    }

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Exchange(ref _stopped, 1);
        await Host.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await Host.StopAsync(timeout.Token).WaitAsync(TimeSpan.FromSeconds(15));
            }
            catch (TimeoutException)
            {
                // A test that found a hanging stop already failed; do not hang the run as well.
            }
        }

        Host.Dispose();
    }
}

/// <summary>The EchoServer sample's handler (its source is compiled into the tests), as a function.</summary>
internal static class TestEcho
{
    private static readonly EchoServer.EchoHandler Handler = new();

    /// <summary>Copies every byte back and ends on the peer's FIN.</summary>
    public static Task EchoAsync(ConnectionContext connection) => Handler.OnConnectedAsync(connection);
}
