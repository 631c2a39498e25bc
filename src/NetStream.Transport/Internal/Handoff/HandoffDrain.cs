using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace NetStream.Transport.Internal.Handoff;

/// <summary>
/// The old process's last moments after a handoff, for Kestrel's connections: a host's stop closes an idle keep-alive
/// connection at once, and a client that sends its next request just then sees the connection close without an answer.
/// So before the stop, for a while (<see cref="Grace"/>), every HTTP/1.x response says <c>Connection: close</c> and every
/// HTTP/2 connection that serves a request is asked to close gracefully: busy clients get their answers, close, and
/// reconnect, to the successor, which alone accepts now.
/// </summary>
internal sealed class HandoffDrain
{
    /// <summary>How long responses close their connections before the host stops.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private volatile bool _draining;

    public bool Draining => _draining;

    public void Start() => _draining = true;
}

/// <summary>Puts <see cref="HandoffDrain"/>'s <c>Connection: close</c> first in Kestrel's request pipeline.</summary>
internal sealed class HandoffDrainStartupFilter(HandoffDrain drain, IOptions<NetStreamTransportOptions> options) : IStartupFilter
{
    // Without a handoff path no request pays for the check.
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => options.Value.Handoff.Path is null ? next : app =>
    {
        app.Use((context, nextMiddleware) =>
        {
            if (drain.Draining)
            {
                if (context.Request.Protocol is "HTTP/1.1" or "HTTP/1.0")
                {
                    context.Response.Headers.Connection = "close";
                }
                else
                {
                    // HTTP/2 and 3 forbid the header: their connection is asked to close gracefully (GOAWAY, its
                    // streams in progress finish), before the host's stop would end what is still running.
                    context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
                }
            }

            return nextMiddleware(context);
        });
        next(app);
    };
}
