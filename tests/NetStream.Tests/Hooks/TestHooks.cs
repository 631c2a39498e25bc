using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using NetStream.Tests.Infrastructure;
using NetStream.Transport;
using NetStream.Transport.Hooks;

namespace NetStream.Tests.Hooks;

/// <summary>What the hooks of one test saw, in order.</summary>
internal sealed class Journal
{
    private readonly SemaphoreSlim _added = new(0);

    public ConcurrentQueue<string> Entries { get; } = new();

    public void Add(string entry)
    {
        Entries.Enqueue(entry);
        _added.Release();
    }

    /// <summary>Waits until the journal holds <paramref name="count"/> entries.</summary>
    public async Task WaitForAsync(int count)
    {
        while (Entries.Count < count)
        {
            Assert.True(await _added.WaitAsync(Listeners.Timeout), $"{count} entries expected in the journal: {string.Join(", ", Entries)}.");
        }
    }
}

internal static class JournalRegistration
{
    /// <summary>Registers <paramref name="journal"/> and <see cref="FirstHook"/>, which writes "first" in it.</summary>
    public static NetStreamBuilder AddFirstHook(this NetStreamBuilder netStream, Journal journal)
    {
        netStream.Services.AddSingleton(journal);
        return netStream.AddAcceptedHook<FirstHook>();
    }
}

internal sealed class FirstHook(Journal journal) : IAcceptedHook
{
    public ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
    {
        journal.Add("first");
        return ValueTask.FromResult(AcceptedResult.Pass);
    }
}

internal sealed class SecondHook(Journal journal) : IAcceptedHook
{
    public async ValueTask<AcceptedResult> AcceptedAsync(AcceptedContext context)
    {
        await Task.Yield();
        journal.Add("second");
        return AcceptedResult.Pass;
    }
}

/// <summary>
/// A connection as a proxy-aware hook would pass on: everything forwarded, but the real client's address. Disposing it
/// disposes the connection it wraps only if it owns it (a new_connection hook's); an accepted hook's replacement does
/// not: the chain disposes each connection once.
/// </summary>
internal sealed class ProxiedConnection(ConnectionContext inner, EndPoint client, bool ownsInner = false) : ConnectionContext
{
    public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }

    public override IFeatureCollection Features => inner.Features;

    public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }

    public override IDuplexPipe Transport { get => inner.Transport; set => inner.Transport = value; }

    public override CancellationToken ConnectionClosed { get => inner.ConnectionClosed; set => inner.ConnectionClosed = value; }

    public override EndPoint? LocalEndPoint { get => inner.LocalEndPoint; set => inner.LocalEndPoint = value; }

    public override EndPoint? RemoteEndPoint { get => client; set { } }

    public override void Abort(ConnectionAbortedException abortReason) => inner.Abort(abortReason);

    public override ValueTask DisposeAsync() => ownsInner ? inner.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>An accepted hook's replacement that writes its name in a journal when disposed, and then fails if told to.</summary>
internal sealed class DisposeProbe(ConnectionContext inner, string name, Journal journal, bool throws = false) : ConnectionContext
{
    public override string ConnectionId { get => inner.ConnectionId; set => inner.ConnectionId = value; }

    public override IFeatureCollection Features => inner.Features;

    public override IDictionary<object, object?> Items { get => inner.Items; set => inner.Items = value; }

    public override IDuplexPipe Transport { get => inner.Transport; set => inner.Transport = value; }

    public override void Abort(ConnectionAbortedException abortReason) => inner.Abort(abortReason);

    public override ValueTask DisposeAsync()
    {
        journal.Add(name);
        return throws ? throw new InvalidOperationException($"{name} failed to dispose") : ValueTask.CompletedTask;
    }
}

internal static class Replies
{
    /// <summary>A pipeline whose handler writes one line of text about the connection and closes it.</summary>
    public static Action<IConnectionBuilder> Say(Func<ConnectionContext, string> text) => server => server.Run(async connection =>
    {
        await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(text(connection)));
    });

    /// <summary>Connects, and reads what the server says up to its close.</summary>
    public static async Task<string> ReadAsync(EndPoint endPoint)
    {
        using var client = await Listeners.ConnectAsync(endPoint);
        return Encoding.UTF8.GetString(await Listeners.ReceiveAsync(client, 1024));
    }
}
