using System.Net.Sockets;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

/// <summary>
/// The accept-error policy on its own: Linux hands even a reset connection to accept(2) normally, so the transient
/// errors cannot be provoked on loopback; the exhaustion path runs end to end in AcceptExhaustionTests.
/// </summary>
public sealed class AcceptErrorPolicyTests
{
    [Theory]
    [InlineData(SocketError.ConnectionAborted, "Transient")]
    [InlineData(SocketError.ConnectionReset, "Transient")]
    [InlineData(SocketError.Interrupted, "Transient")]
    [InlineData(SocketError.WouldBlock, "Transient")]
    [InlineData(SocketError.ProtocolOption, "Transient")]
    [InlineData(SocketError.NetworkUnreachable, "Transient")]
    [InlineData(SocketError.TooManyOpenSockets, "ResourceExhausted")]
    [InlineData(SocketError.NoBufferSpaceAvailable, "ResourceExhausted")]
    [InlineData(SocketError.AccessDenied, "Unexpected")]
    [InlineData(SocketError.InvalidArgument, "Unexpected")]
    public void Errors_are_classified_as_the_accept_man_page_says(SocketError error, string kind) =>
        Assert.Equal(kind, AcceptErrorPolicy.Classify(error).ToString());

    [Fact]
    public void The_back_off_doubles_from_5_ms_to_1_s_and_starts_again_after_a_success()
    {
        var policy = new AcceptErrorPolicy();

        Assert.Equal([5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000], Enumerable.Range(0, 10).Select(_ => policy.NextDelayMs()));
        policy.Succeeded();
        Assert.Equal(5, policy.NextDelayMs());
    }

    [Fact]
    public void Warnings_are_one_per_interval_and_count_what_they_held_back()
    {
        var policy = new AcceptErrorPolicy();

        Assert.True(policy.ShouldWarn(out var first));
        Assert.Equal(0, first);
        Assert.False(policy.ShouldWarn(out _));
        Assert.False(policy.ShouldWarn(out _));
    }
}
