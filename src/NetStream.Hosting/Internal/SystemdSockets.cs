using System.Globalization;

namespace NetStream.Hosting.Internal;

/// <summary>
/// The listening sockets systemd passed by socket activation (<c>sd_listen_fds(3)</c>): when <c>LISTEN_PID</c> is
/// this process, descriptors 3 .. 3 + <c>LISTEN_FDS</c> - 1 are sockets, named in order by the colon-separated
/// <c>LISTEN_FDNAMES</c> (systemd's <c>FileDescriptorName=</c>, by default the socket unit's name).
/// Built from the variables' values so that it can be tested without being systemd.
/// </summary>
internal sealed class SystemdSockets
{
    /// <summary>The first passed descriptor (<c>SD_LISTEN_FDS_START</c>).</summary>
    public const int FirstDescriptor = 3;

    private static readonly string[] Variables = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

    private readonly string? _problem;
    private readonly string[]? _names;
    private readonly string? _namesProblem;

    private SystemdSockets(int count, string? problem, string[]? names, string? namesProblem)
    {
        Count = count;
        _problem = problem;
        _names = names;
        _namesProblem = namesProblem;
    }

    /// <summary>How many sockets systemd passed to this process (0 when it passed none to us).</summary>
    public int Count { get; }

    /// <summary>Reads this process's <c>LISTEN_PID</c>, <c>LISTEN_FDS</c> and <c>LISTEN_FDNAMES</c>.</summary>
    public static SystemdSockets FromEnvironment() => Parse(
        Environment.GetEnvironmentVariable("LISTEN_PID"),
        Environment.GetEnvironmentVariable("LISTEN_FDS"),
        Environment.GetEnvironmentVariable("LISTEN_FDNAMES"),
        Environment.ProcessId);

    /// <summary>Never throws: a problem with the variables surfaces only when an endpoint asks for a socket.</summary>
    public static SystemdSockets Parse(string? listenPid, string? listenFds, string? listenFdNames, int processId)
    {
        if (listenFds is null)
        {
            return Problem("LISTEN_FDS is not set: the process was not started by systemd socket activation (a .socket unit)");
        }

        if (!int.TryParse(listenFds, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0)
        {
            return Problem($"LISTEN_FDS = '{listenFds}' is not a positive number of sockets");
        }

        if (listenPid is null)
        {
            return Problem("LISTEN_FDS is set but LISTEN_PID is not, so the sockets cannot be known to be this process's");
        }

        if (!int.TryParse(listenPid, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid != processId)
        {
            return Problem($"LISTEN_PID = '{listenPid}' is not this process ({processId}): the sockets were passed to another process, which did not unset LISTEN_FDS");
        }

        if (listenFdNames is null)
        {
            return new SystemdSockets(count, null, null, "LISTEN_FDNAMES is not set (systemd older than 227?), so sockets can only be chosen by index");
        }

        var names = listenFdNames.Split(':');
        return names.Length == count
            ? new SystemdSockets(count, null, names, null)
            : new SystemdSockets(count, null, null, $"LISTEN_FDNAMES = '{listenFdNames}' names {Sockets(names.Length)} but LISTEN_FDS = {count}");
    }

    /// <summary>
    /// The descriptor a <c>systemd:</c> URL's selector picks: empty for the only passed socket, digits for a 0-based
    /// index, anything else for a name of <c>LISTEN_FDNAMES</c> that only one socket has.
    /// </summary>
    /// <exception cref="InvalidOperationException">The variables are missing or wrong, or the selector picks no single socket.</exception>
    public int Resolve(string selector)
    {
        if (_problem is not null)
        {
            throw new InvalidOperationException(_problem + ".");
        }

        if (selector.Length == 0)
        {
            return Count == 1
                ? FirstDescriptor
                : throw new InvalidOperationException($"systemd passed {Count} sockets ({Describe()}): choose one with systemd:<index> or systemd:<name>.");
        }

        if (selector.All(char.IsAsciiDigit))
        {
            return int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < Count
                ? FirstDescriptor + index
                : throw new InvalidOperationException($"systemd passed {Sockets(Count)}, so the index runs from 0 to {Count - 1} ({Describe()}).");
        }

        if (_names is null)
        {
            throw new InvalidOperationException(_namesProblem + ".");
        }

        var matches = Enumerable.Range(0, Count).Where(i => _names[i] == selector).ToList();
        return matches.Count switch
        {
            1 => FirstDescriptor + matches[0],
            0 => throw new InvalidOperationException($"systemd passed no socket named '{selector}' ({Describe()})."),
            _ => throw new InvalidOperationException($"systemd passed {matches.Count} sockets named '{selector}' (indexes {string.Join(", ", matches)}): choose one with systemd:<index>, or give each its own FileDescriptorName=."),
        };
    }

    /// <summary>Every passed socket: its descriptor and its name (null when systemd named none).</summary>
    public IEnumerable<(int Descriptor, string? Name)> Passed => _problem is not null
        ? []
        : Enumerable.Range(0, Count).Select(i => (FirstDescriptor + i, _names?[i]));

    /// <summary>The descriptor of the one passed socket named <paramref name="name"/>, if exactly one is.</summary>
    public int? Named(string name)
    {
        if (_problem is not null || _names is null)
        {
            return null;
        }

        var matches = Enumerable.Range(0, Count).Where(i => _names[i] == name).ToList();
        return matches.Count == 1 ? FirstDescriptor + matches[0] : null;
    }

    /// <summary>
    /// Unsets the variables, as <c>sd_listen_fds(unset_environment: 1)</c> does, so that a child process does not
    /// take the sockets for its own. Only the runtime's copy of the environment changes: what
    /// <see cref="System.Diagnostics.Process"/> passes to children.
    /// </summary>
    public static void ClearEnvironment()
    {
        foreach (var variable in Variables)
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    private static string Sockets(int count) => count == 1 ? "1 socket" : $"{count} sockets";

    private static SystemdSockets Problem(string problem) => new(0, problem, null, null);

    private string Describe() => _names is null
        ? $"descriptors {FirstDescriptor} to {FirstDescriptor + Count - 1}, unnamed"
        : string.Join(", ", _names.Select((name, i) => $"{i} = '{name}'"));
}
