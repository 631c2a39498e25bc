using NetStream.Transport.Internal.Engines.Epoll;

namespace NetStream.Tests.Infrastructure;

/// <summary>The epoll loop threads of this process (<c>ns-epoll i/n</c>, <c>ns-epoll i/n@cpu</c>), read from <c>/proc/self/task</c>.</summary>
internal static class LoopThreads
{
    /// <summary>Each loop thread's name and the text of one of its <c>/proc</c> files (<c>stat</c>, <c>status</c>).</summary>
    public static IEnumerable<(string Name, string Text)> Read(string file)
    {
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            string name, text;
            try
            {
                name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                text = File.ReadAllText(Path.Combine(task, file));
            }
            catch (IOException)
            {
                continue; // a thread of another test ended meanwhile
            }

            if (name.StartsWith(EpollLoop.ThreadNamePrefix, StringComparison.Ordinal))
            {
                yield return (name, text);
            }
        }
    }
}
