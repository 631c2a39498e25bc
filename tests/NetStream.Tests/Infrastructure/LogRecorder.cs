using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace NetStream.Tests.Infrastructure;

/// <summary>A logger provider that keeps every entry of one host, for tests that assert what was logged.</summary>
internal sealed class LogRecorder : ILoggerProvider
{
    private readonly ConcurrentQueue<Entry> _entries = new();
    private TaskCompletionSource _nextEntry = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<Entry> Entries => _entries.ToArray();

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    /// <summary>Waits until the entries logged so far satisfy <paramref name="condition"/>.</summary>
    /// <exception cref="TimeoutException">They do not within <paramref name="timeout"/>.</exception>
    public async Task WaitUntilAsync(Func<IReadOnlyCollection<Entry>, bool> condition, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            // Taken before the check, so that an entry logged in between still wakes this wait.
            var next = Volatile.Read(ref _nextEntry).Task;
            if (condition(Entries))
            {
                return;
            }

            try
            {
                await next.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"The log did not reach the expected state in {timeout}.");
            }
        }
    }

    public void Dispose()
    {
    }

    /// <summary>
    /// What the summary lines of a log budget (event <paramref name="summaryEventId"/>, "N more ... were not logged")
    /// count, for tests that check a flood was logged so many a second and counted in full.
    /// </summary>
    public static long HeldBack(IEnumerable<Entry> entries, int summaryEventId) =>
        entries.Where(e => e.EventId == summaryEventId).Sum(e => long.Parse(e.Message.AsSpan(0, e.Message.IndexOf(' '))));

    public sealed record Entry(string Category, LogLevel Level, int EventId, string Message, Exception? Exception);

    private void Add(Entry entry)
    {
        _entries.Enqueue(entry);
        Interlocked.Exchange(ref _nextEntry, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).SetResult();
    }

    private sealed class Logger(string category, LogRecorder recorder) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            recorder.Add(new Entry(category, logLevel, eventId.Id, formatter(state, exception), exception));
    }
}
