using System.Diagnostics;
using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// The EchoServer sample in a child process, for what a test must not do to its own process (run it out of
/// descriptors). It binds 127.0.0.1 port 0 and a Unix socket the test names, never the sample's fixed endpoints;
/// its log is read line by line from stdout. The test project builds the sample and records where it is.
/// </summary>
internal sealed partial class EchoServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiters = [];
    private bool _ended;

    /// <summary>The child's thread pool size, fixed so that it starts no thread once its descriptors run out.</summary>
    public const int PoolThreads = 4;

    private EchoServerProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything the server wrote so far, for failure messages.</summary>
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

    /// <summary>Starts the sample with its TCP endpoint on 127.0.0.1 port 0 and its Unix endpoint at <paramref name="unixSocketPath"/>.</summary>
    public static EchoServerProcess Start(string unixSocketPath)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(SamplePath());
        info.Environment["NetStream__Endpoints__Echo__Url"] = "tcp://127.0.0.1:0";
        info.Environment["NetStream__Endpoints__EchoUnix__Url"] = "unix:" + unixSocketPath;
        info.Environment["Logging__Console__FormatterName"] = "simple";
        info.Environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        info.Environment["Logging__Console__FormatterOptions__ColorBehavior"] = "Disabled";

        // A fixed-size thread pool (hex, as the runtime reads it): out of descriptors, a .NET process cannot start a
        // thread (CoreCLR opens a pipe for each), and the pool's OutOfMemoryException from a failed start ends it.
        info.Environment["DOTNET_ThreadPool_ForceMinWorkerThreads"] = PoolThreads.ToString("x");
        info.Environment["DOTNET_ThreadPool_ForceMaxWorkerThreads"] = PoolThreads.ToString("x");

        var server = new EchoServerProcess(new Process { StartInfo = info });
        server._process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                server.OnLine("stderr: " + e.Data);
            }
        };
        server._process.Start();
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        return server;
    }

    /// <summary>The TCP endpoint, from the transport's start-up line (event 1, "listening on").</summary>
    public async Task<IPEndPoint> WaitForTcpEndPointAsync()
    {
        var line = await WaitForLineAsync(l => ListeningOnLoopback().IsMatch(l), Listeners.Timeout);
        return IPEndPoint.Parse(ListeningOnLoopback().Match(line).Groups[1].Value);
    }

    /// <summary>The first line, already written or still to come, that <paramref name="match"/> accepts.</summary>
    /// <exception cref="TimeoutException">No such line within <paramref name="timeout"/>; the message holds the output.</exception>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lines)
        {
            if (_lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            if (_ended)
            {
                throw new InvalidOperationException("The server ended its output:\n" + string.Join('\n', _lines));
            }

            _waiters.Add((match, found));
        }

        try
        {
            return await found.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No such line from the server in {timeout}. Its output:\n{Output}");
        }
    }

    /// <summary>Sets the server's RLIMIT_NOFILE (soft and hard) from outside, with util-linux's prlimit.</summary>
    public void LimitOpenFiles(int limit)
    {
        using var prlimit = Process.Start("/usr/bin/prlimit", ["--pid", Id.ToString(), $"--nofile={limit}:{limit}"]);
        Assert.True(prlimit.WaitForExit(Listeners.Timeout), "prlimit did not finish");
        Assert.Equal(0, prlimit.ExitCode);
    }

    /// <summary>How many thread-pool workers the server has started (they live 20 s idle).</summary>
    public int PoolThreadCount() =>
        Directory.GetDirectories($"/proc/{Id}/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith(".NET TP Worker", StringComparison.Ordinal));

    public int OpenDescriptorCount() => Directory.GetFiles($"/proc/{Id}/fd").Length;

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
            if (line is null)
            {
                _ended = true;
                ended.AddRange(_waiters.Select(w => w.Found));
                _waiters.Clear();
            }
            else
            {
                _lines.Add(line);
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Match(line))
                    {
                        _waiters[i].Found.TrySetResult(line);
                        _waiters.RemoveAt(i);
                    }
                }
            }
        }

        foreach (var waiter in ended)
        {
            waiter.TrySetException(new InvalidOperationException("The server ended its output:\n" + Output));
        }
    }

    private static string SamplePath()
    {
        var path = typeof(EchoServerProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "EchoServerPath").Value;
        Assert.True(File.Exists(path), $"The EchoServer sample is not built at {path}");
        return path!;
    }

    [GeneratedRegex(@"NetStream\.Transport\[1\] NetStream \(\w+\) listening on (127\.0\.0\.1:\d+),")]
    private static partial Regex ListeningOnLoopback();
}
