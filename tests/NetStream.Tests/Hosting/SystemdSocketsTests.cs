using NetStream.Hosting.Internal;

namespace NetStream.Tests.Hosting;

public sealed class SystemdSocketsTests
{
    private const int Pid = 4242;

    private static SystemdSockets Passed(string fds, string? names = null) => SystemdSockets.Parse(Pid.ToString(), fds, names, Pid);

    [Theory]
    [InlineData("", 3)]
    [InlineData("0", 3)]
    [InlineData("echo", 3)]
    public void One_passed_socket_is_descriptor_3_by_default_by_index_and_by_name(string selector, int descriptor)
    {
        Assert.Equal(descriptor, Passed("1", "echo").Resolve(selector));
    }

    [Theory]
    [InlineData("0", 3)]
    [InlineData("2", 5)]
    [InlineData("web", 3)]
    [InlineData("admin", 5)]
    [InlineData("web.socket", 4)]
    public void Several_passed_sockets_are_chosen_by_index_or_by_name(string selector, int descriptor)
    {
        Assert.Equal(descriptor, Passed("3", "web:web.socket:admin").Resolve(selector));
    }

    [Fact]
    public void Without_LISTEN_FDNAMES_sockets_are_chosen_by_index_only()
    {
        var sockets = Passed("2");

        Assert.Equal(4, sockets.Resolve("1"));
        Assert.Contains("LISTEN_FDNAMES is not set", Assert.Throws<InvalidOperationException>(() => sockets.Resolve("web")).Message);
    }

    [Theory]
    [InlineData(null, null, "LISTEN_FDS is not set")]
    [InlineData("4242", "0", "LISTEN_FDS = '0'")]
    [InlineData("4242", "two", "LISTEN_FDS = 'two'")]
    [InlineData(null, "1", "LISTEN_PID is not")]
    [InlineData("1", "1", "LISTEN_PID = '1' is not this process (4242)")]
    [InlineData("x", "1", "LISTEN_PID = 'x'")]
    public void Missing_or_foreign_variables_fail_every_selector(string? pid, string? fds, string expected)
    {
        var sockets = SystemdSockets.Parse(pid, fds, "echo", Pid);

        Assert.Equal(0, sockets.Count);
        foreach (var selector in new[] { "", "0", "echo" })
        {
            Assert.Contains(expected, Assert.Throws<InvalidOperationException>(() => sockets.Resolve(selector)).Message);
        }
    }

    [Theory]
    [InlineData("", "systemd passed 2 sockets (0 = 'web', 1 = 'admin'): choose one")]
    [InlineData("2", "the index runs from 0 to 1")]
    [InlineData("99999999999", "the index runs from 0 to 1")]
    [InlineData("api", "no socket named 'api' (0 = 'web', 1 = 'admin')")]
    [InlineData("Web", "no socket named 'Web'")]
    public void A_selector_that_picks_no_single_socket_fails_naming_what_was_passed(string selector, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Passed("2", "web:admin").Resolve(selector));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_name_shared_by_several_sockets_fails_naming_their_indexes()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Passed("3", "echo.socket:other:echo.socket").Resolve("echo.socket"));

        Assert.Contains("2 sockets named 'echo.socket' (indexes 0, 2)", error.Message);
    }

    [Fact]
    public void Names_that_do_not_match_LISTEN_FDS_fail_a_choice_by_name_not_by_index()
    {
        var sockets = Passed("2", "web");

        Assert.Equal(4, sockets.Resolve("1"));
        Assert.Contains("names 1 socket but LISTEN_FDS = 2", Assert.Throws<InvalidOperationException>(() => sockets.Resolve("web")).Message);
    }
}
