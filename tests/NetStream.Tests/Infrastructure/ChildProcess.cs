using System.Diagnostics;
using System.Runtime.InteropServices;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// A command run as a child process, for what a test must not do in its own process. Its stdout and stderr are
/// read line by line (stderr lines marked "stderr: "): lines can be awaited and the whole output goes into failure
/// messages. It is killed on dispose if still running.
/// </summary>
internal sealed partial class ChildProcess : IDisposable
{
    private const int Sigint = 2;
    private const int Sigterm = 15;

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<Waiter> _waiters = [];
    private int _endedStreams;

    private ChildProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the child wrote so far, stdout and stderr, for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="arguments"/> and, on top of this process's
    /// environment, <paramref name="environment"/>.</summary>
    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        var child = new ChildProcess(new Process { StartInfo = info });
        child._process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.OnLine(e.Data is null ? null : "stderr: " + e.Data);
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The first line, already written or still to come, that <paramref name="match"/> accepts.</summary>
    /// <exception cref="TimeoutException">No such line within <paramref name="timeout"/>; the message holds the output.</exception>
    /// <exception cref="InvalidOperationException">The child closed its output first; the message holds it.</exception>
    /// <summary>How many lines the child wrote so far that <paramref name="match"/> accepts.</summary>
    public int CountLines(Func<string, bool> match)
    {
        lock (_lines)
        {
            return _lines.Count(match);
        }
    }

    public Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout) => WaitForLinesAsync(match, 1, timeout);

    /// <summary>The <paramref name="count"/>th line, already written or still to come, that <paramref name="match"/>
    /// accepts.</summary>
    /// <exception cref="TimeoutException">Fewer such lines within <paramref name="timeout"/>; the message holds the output.</exception>
    /// <exception cref="InvalidOperationException">The child closed its output first; the message holds it.</exception>
    public async Task<string> WaitForLinesAsync(Func<string, bool> match, int count, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var waiter = new Waiter(match, count);
        lock (_lines)
        {
            foreach (var line in _lines)
            {
                if (waiter.Counts(line))
                {
                    return line;
                }
            }

            if (_endedStreams == 2)
            {
                throw Ended();
            }

            _waiters.Add(waiter);
        }

        try
        {
            return await waiter.Found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Fewer than {count} such lines from the child in {timeout}. Its output:\n{Output}");
        }
    }

    /// <summary>Sends SIGTERM with libc's kill; returns what kill returned (0 when the signal was sent).</summary>
    public int SendSigterm() => Kill(Id, Sigterm);

    /// <summary>Sends SIGINT, what Ctrl+C in a terminal sends; returns what kill returned.</summary>
    public int SendSigint() => Kill(Id, Sigint);

    /// <summary>Waits until the child exited and its output is read to the end.</summary>
    /// <exception cref="TimeoutException">It still runs after <paramref name="timeout"/>; the message holds the output.</exception>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The child did not exit in {timeout}. Its output:\n{Output}");
        }
    }

    /// <summary>Sets the child's RLIMIT_NOFILE (soft and hard) from outside, with util-linux's prlimit.</summary>
    public void LimitOpenFiles(int limit)
    {
        using var prlimit = Process.Start("/usr/bin/prlimit", ["--pid", Id.ToString(), $"--nofile={limit}:{limit}"]);
        Assert.True(prlimit.WaitForExit(Listeners.Timeout), "prlimit did not finish");
        Assert.Equal(0, prlimit.ExitCode);
    }

    public int OpenDescriptorCount() => Directory.GetFiles($"/proc/{Id}/fd").Length;

    /// <summary>How many of the child's threads have a name (comm) that starts with <paramref name="prefix"/>.</summary>
    public int ThreadCount(string prefix) =>
        Directory.GetDirectories($"/proc/{Id}/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>User plus system CPU time of the whole process (all threads), from /proc/PID/stat.</summary>
    public TimeSpan CpuTime()
    {
        // utime and stime are fields 14 and 15; split after the ")" that ends the command name, which may hold spaces.
        var stat = File.ReadAllText($"/proc/{Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11]) + long.Parse(fields[12]);

        // In clock ticks of USER_HZ, which the kernel fixes at 100 in its user ABI.
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(Listeners.Timeout);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill.
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        List<TaskCompletionSource<string>> ended = [];
        lock (_lines)
        {
            if (line is not null)
            {
                _lines.Add(line);
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Counts(line))
                    {
                        _waiters[i].Found.TrySetResult(line);
                        _waiters.RemoveAt(i);
                    }
                }
            }
            else if (++_endedStreams == 2)
            {
                ended.AddRange(_waiters.Select(w => w.Found));
                _waiters.Clear();
            }
        }

        foreach (var waiter in ended)
        {
            waiter.TrySetException(Ended());
        }
    }

    /// <summary>Someone waiting for the <c>count</c>th line that <c>match</c> accepts.</summary>
    private sealed class Waiter(Func<string, bool> match, int count)
    {
        private int _remaining = count;

        public TaskCompletionSource<string> Found { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Whether <paramref name="line"/> is the one awaited: the last of the count.</summary>
        public bool Counts(string line) => match(line) && --_remaining == 0;
    }

    private InvalidOperationException Ended() => new("The child ended its output:\n" + Output);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
