using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NetStream.Transport;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// A real Kestrel app on NetStream, started with the endpoints and request pipeline a test gives, stopped and
/// disposed with it. Tests bind port 0 and read the port back from <see cref="Addresses"/>, never a fixed port.
/// </summary>
internal sealed class KestrelApp : IAsyncDisposable
{
    /// <summary>How long any one test may take, start to end.</summary>
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private int _stopped;

    private KestrelApp(WebApplication app, IReadOnlyList<string> addresses)
    {
        App = app;
        Addresses = addresses;
    }

    /// <summary>The running application.</summary>
    public WebApplication App { get; }

    /// <summary>The addresses Kestrel reports once bound, port 0 resolved (e.g. <c>http://127.0.0.1:41235</c>).</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>The first bound address, as a base address for an <see cref="HttpClient"/>.</summary>
    public Uri BaseAddress => new(Addresses[0]);

    /// <summary>The first bound TCP endpoint, for raw socket clients.</summary>
    public IPEndPoint EndPoint => new(IPAddress.Parse(BaseAddress.Host), BaseAddress.Port);

    /// <summary>A token source that cancels after <see cref="TestTimeout"/>: every wait in a test takes its token.</summary>
    public static CancellationTokenSource Timeout() => new(TestTimeout);

    /// <summary>Starts an app on 127.0.0.1, port 0, with <paramref name="configureEndpoint"/> applied to that endpoint.</summary>
    public static Task<KestrelApp> StartOnLoopbackAsync(
        Action<WebApplication> configurePipeline,
        CancellationToken cancellationToken,
        Action<ListenOptions>? configureEndpoint = null) =>
        StartAsync(
            kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => configureEndpoint?.Invoke(listen)),
            configurePipeline,
            cancellationToken);

    /// <summary>Starts an app with NetStream as Kestrel's transport, the given endpoints and the given request pipeline.</summary>
    /// <param name="configureKestrel">Declares the endpoints (<c>Listen</c>, <c>ListenUnixSocket</c>, <c>ListenHandle</c>).</param>
    /// <param name="configurePipeline">Adds middleware and endpoints to the app.</param>
    /// <param name="cancellationToken">Bounds the start.</param>
    /// <param name="configureTransport">Changes NetStream's options.</param>
    /// <param name="configureBuilder">Adds services (hooks, configuration) before the app is built.</param>
    public static async Task<KestrelApp> StartAsync(
        Action<KestrelServerOptions> configureKestrel,
        Action<WebApplication> configurePipeline,
        CancellationToken cancellationToken,
        Action<NetStreamTransportOptions>? configureTransport = null,
        Action<WebApplicationBuilder>? configureBuilder = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseNetStream(configureTransport ?? (static _ => { }));
        builder.WebHost.ConfigureKestrel(configureKestrel);
        configureBuilder?.Invoke(builder);

        var app = builder.Build();
        try
        {
            configurePipeline(app);
            await app.StartAsync(cancellationToken);
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
            return new KestrelApp(app, addresses);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the app (unbinds its endpoints, drains its connections); later calls do nothing.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(StopTimeout);
        await App.StopAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            await App.DisposeAsync();
        }
    }

    /// <summary>An <see cref="HttpClient"/> for this app's first address; the caller disposes it.</summary>
    public HttpClient CreateClient(SocketsHttpHandler? handler = null, Version? version = null, HttpVersionPolicy policy = HttpVersionPolicy.RequestVersionExact) =>
        new(handler ?? new SocketsHttpHandler(), disposeHandler: true)
        {
            BaseAddress = BaseAddress,
            DefaultRequestVersion = version ?? HttpVersion.Version11,
            DefaultVersionPolicy = policy,
            Timeout = TestTimeout,
        };
}
