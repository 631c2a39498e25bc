namespace NetStream.Transport.Internal.Engines.Epoll;

/// <summary>What an epoll loop watches: a connection's socket, or a listening socket.</summary>
internal interface IEpollHandler
{
    /// <summary>The loop that watches it.</summary>
    EpollLoop Loop { get; }

    /// <summary>The loop's tag for this registration (slot and generation); set by <see cref="EpollLoop.Register"/>.</summary>
    ulong Tag { get; set; }

    /// <summary>Called on the loop with the events epoll reported.</summary>
    void OnReadiness(uint events);
}
