namespace NetStream.Transport.Internal;

/// <summary>
/// When a connection last moved bytes, for the hosted server's <c>FirstByteTimeout</c> and <c>IdleTimeout</c>: read
/// from a timer, written by the I/O loops with a coarse clock (<see cref="Environment.TickCount64"/>) at no other cost.
/// </summary>
internal interface IConnectionActivityFeature
{
    /// <summary><see cref="Environment.TickCount64"/> when the last byte was received or handed to the kernel; the start before any.</summary>
    long LastActivity { get; }

    /// <summary>Whether the peer has sent a byte of its own yet: a PROXY header is the load balancer's, not the client's.</summary>
    bool HasReceived { get; }

    /// <summary>
    /// Says that a preamble of the transport's own (a PROXY header) comes first: <see cref="HasReceived"/> stays false
    /// until <see cref="ConsumedPreamble"/>, so that the bytes of a header are never taken for the client's.
    /// </summary>
    void ExpectPreamble();

    /// <summary>
    /// Says that the transport itself consumed <paramref name="bytes"/> at the start of the input (0 if there was no
    /// header), so that a client behind a load balancer that sends nothing still meets the first-byte timeout.
    /// </summary>
    void ConsumedPreamble(long bytes);

    /// <summary>Ends the connection for a timeout: FIN, and the application's reads fail with <paramref name="reason"/>.</summary>
    void TimedOut(string reason);
}
