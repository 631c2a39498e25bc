using System.Runtime.CompilerServices;
using NetStream.Transport;

namespace NetStream.Tests.Infrastructure;

/// <summary>
/// The engine this test assembly runs the suite on. The same test bodies are compiled twice: NetStream.Tests runs them
/// on the Sockets engine, NetStream.Tests.Epoll (built with NETSTREAM_EPOLL) on the epoll engine.
/// </summary>
internal static class EngineUnderTest
{
#if NETSTREAM_EPOLL
    public const NetStreamEngine Current = NetStreamEngine.Epoll;
#else
    public const NetStreamEngine Current = NetStreamEngine.Sockets;
#endif

    [ModuleInitializer]
    internal static void Choose()
    {
        // The default of every NetStreamTransportOptions made in this process, and, through the environment, of the
        // configuration of every host: the in-process ones and the sample started as a child process.
        NetStreamTransportOptions.DefaultEngine = Current;
        Environment.SetEnvironmentVariable("NetStream__Engine", Current.ToString());
    }
}
