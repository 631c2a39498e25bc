namespace NetStream.Transport.Internal;

/// <summary>
/// When a connection last moved bytes, for the hosted server's <c>FirstByteTimeout</c> and <c>IdleTimeout</c>: read
/// from a timer, written by the I/O loops with a coarse clock (<see cref="Environment.TickCount64"/>) at no other cost.
/// </summary>
internal interface IConnectionActivityFeature
{
    /// <summary><see cref="Environment.TickCount64"/> when the last byte was received or handed to the kernel; the start before any.</summary>
    long LastActivity { get; }

    /// <summary>Whether the peer has sent a byte yet.</summary>
    bool HasReceived { get; }

    /// <summary>Ends the connection for a timeout: FIN, and the application's reads fail with <paramref name="reason"/>.</summary>
    void TimedOut(string reason);
}
