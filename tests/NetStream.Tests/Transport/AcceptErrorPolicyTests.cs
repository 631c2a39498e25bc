using System.Diagnostics;
using System.Net.Sockets;
using NetStream.Transport.Internal;

namespace NetStream.Tests.Transport;

/// <summary>
/// The accept-error policy on its own, by errno: Linux hands even a reset connection to accept(2) normally, so most
/// errors cannot be provoked on loopback; AcceptErrnoTests injects them into a real server, and AcceptExhaustionTests
/// runs it out of descriptors.
/// </summary>
public sealed class AcceptErrorPolicyTests
{
    [Theory]
    [InlineData(Errno.ECONNABORTED, "Transient")]
    [InlineData(Errno.ECONNRESET, "Transient")]
    [InlineData(Errno.EINTR, "Transient")]
    [InlineData(Errno.EAGAIN, "Transient")]
    [InlineData(Errno.EPROTO, "Transient")]
    [InlineData(Errno.ENOPROTOOPT, "Transient")]
    [InlineData(Errno.ENETUNREACH, "Transient")]
    [InlineData(Errno.EHOSTUNREACH, "Transient")]
    [InlineData(Errno.ENONET, "Transient")]
    [InlineData(Errno.EPERM, "Transient")]
    [InlineData(Errno.EMFILE, "ResourceExhausted")]
    [InlineData(Errno.ENFILE, "ResourceExhausted")]
    [InlineData(Errno.ENOBUFS, "ResourceExhausted")]
    [InlineData(Errno.ENOMEM, "ResourceExhausted")]
    [InlineData(Errno.EBADF, "Unexpected")]
    [InlineData(Errno.EINVAL, "Unexpected")]
    [InlineData(Errno.ENOTSOCK, "Unexpected")]
    [InlineData(Errno.EACCES, "Unexpected")]
    public void Errors_are_classified_by_errno_as_the_accept_man_page_says(int errno, string kind) =>
        Assert.Equal(kind, AcceptErrorPolicy.Classify(errno).ToString());

    [Fact]
    public void A_failure_with_no_errno_the_runtime_own_is_unexpected() =>
        Assert.Equal(AcceptErrorKind.Unexpected, AcceptErrorPolicy.Classify(null));

    [Fact]
    public void The_errno_of_a_socket_exception_is_read_when_the_runtime_kept_it_and_unknown_when_it_dropped_it()
    {
        // The runtime merges EMFILE and ENFILE into one SocketError and gives back one of the two: NetStream asks the
        // kernel again for which it was.
        Assert.Contains(Errno.Of(new SocketException((int)SocketError.TooManyOpenSockets)), new int?[] { Errno.EMFILE, Errno.ENFILE });
        Assert.Equal(Errno.ECONNABORTED, Errno.Of(new SocketException((int)SocketError.ConnectionAborted)));

        // The runtime's catch-all, which ENOMEM and EPROTO become on .NET 10: the number is gone.
        Assert.Null(Errno.Of(new SocketException((int)SocketError.SocketError)));
        Assert.Equal("ENOMEM", Errno.Name(Errno.ENOMEM));
        Assert.Equal("errno 77", Errno.Name(77));
    }

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
        var now = Stopwatch.GetTimestamp();

        Assert.True(policy.ShouldWarn(now, out var first));
        Assert.Equal(0, first);
        Assert.False(policy.ShouldWarn(now, out _));
        Assert.False(policy.ShouldWarn(now + Stopwatch.Frequency, out _));

        Assert.True(policy.ShouldWarn(now + (6 * Stopwatch.Frequency), out var held));
        Assert.Equal(2, held);
    }

    [Fact]
    public void Nothing_but_failures_for_ten_seconds_says_once_that_the_endpoint_is_not_accepting_until_one_succeeds()
    {
        var policy = new AcceptErrorPolicy();
        var start = Stopwatch.GetTimestamp();
        long At(double seconds) => start + (long)(seconds * Stopwatch.Frequency);

        Assert.False(policy.Failed(At(0)));
        Assert.False(policy.Failed(At(9.9)));
        Assert.False(policy.IsNotAccepting);
        Assert.True(policy.Failed(At(10.1)));
        Assert.True(policy.IsNotAccepting);
        Assert.False(policy.Failed(At(30)));

        var failedFor = policy.Succeeded();
        Assert.NotNull(failedFor);
        Assert.False(policy.IsNotAccepting);
        Assert.Null(policy.Succeeded());

        // A success restarts the streak: failures spread over more than ten seconds with successes between say nothing.
        Assert.False(policy.Failed(At(31)));
        policy.Succeeded();
        Assert.False(policy.Failed(At(45)));
    }
}
