using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NetStream.Hosting.Internal;
using NetStream.Tests.Infrastructure;

namespace NetStream.Tests.Hosting;

public sealed class HostedConfigurationTests
{
    [Theory]
    [InlineData("http://x:1", "not a NetStream endpoint URL")]
    [InlineData("tcp://127.0.0.1:99999", "the port '99999' is not a number from 0 to 65535")]
    [InlineData("tcp://127.0.0.1", "no port")]
    [InlineData("tcp://[::1]", "no port")]
    [InlineData("tcp://example.com:80", "host names are not resolved")]
    [InlineData("unix:", "the Unix socket path is empty")]
    [InlineData("fd:abc", "expected fd:<descriptor number>")]
    public async Task A_bad_url_fails_start_naming_the_key_the_value_and_the_fault(string url, string fault)
    {
        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints(url));

        Assert.IsType<InvalidOperationException>(error);
        Assert.StartsWith($"NetStream:Endpoints:E0:Url = '{url}': ", error.Message);
        Assert.Contains(fault, error.Message);
    }

    [Fact]
    public async Task A_unix_path_too_long_for_the_kernel_fails_start_naming_the_key()
    {
        var url = "unix:/tmp/" + new string('x', 120);

        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints(url));

        Assert.IsType<InvalidOperationException>(error);
        Assert.StartsWith($"NetStream:Endpoints:E0:Url = '{url}': ", error.Message);
    }

    [Fact]
    public async Task An_unknown_key_under_an_endpoint_fails_start_naming_it()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:Uri"] = "tcp://127.0.0.1:0";

        var error = await EchoHost.StartFailsAsync(settings);

        Assert.Contains("NetStream:Endpoints:E0:Uri", error.Message);
    }

    [Theory]
    [InlineData("NetStream:ShutdownTimeout", "soon")]
    [InlineData("NetStream:Endpoints:E0:MaxConnections", "many")] // the binder alone would drop the endpoint silently
    [InlineData("NetStream:Endpoints:E0:Backlog", "deep")]
    public async Task A_value_that_does_not_convert_fails_start_naming_the_key_and_the_value(string key, string value)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings[key] = value;

        var error = Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(await EchoHost.StartFailsAsync(settings));

        Assert.StartsWith($"{key} = '{value}': ", Assert.Single(error.Failures));
    }

    [Fact]
    public async Task Server_and_endpoint_keys_are_known_to_the_transport_section_and_transport_keys_to_an_endpoint()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:ShutdownTimeout"] = "00:00:05";
        settings["NetStream:Endpoints:E0:Backlog"] = "16";
        settings["NetStream:Endpoints:E0:KeepAlive:Enabled"] = "true";

        await using var host = await EchoHost.StartAsync(settings);

        Assert.Equal("ok"u8.ToArray(), await EchoClient.RoundTripAsync(host.EndPoint, "ok"u8.ToArray()));
    }

    [Fact]
    public async Task A_star_url_listens_on_every_address()
    {
        await using var host = await EchoHost.StartAsync(EchoHost.Endpoints("tcp://*:0"));
        var port = ((IPEndPoint)host.EndPoint).Port;

        Assert.Equal("4"u8.ToArray(), await EchoClient.RoundTripAsync(new IPEndPoint(IPAddress.Loopback, port), "4"u8.ToArray()));
        Assert.Equal("6"u8.ToArray(), await EchoClient.RoundTripAsync(new IPEndPoint(IPAddress.IPv6Loopback, port), "6"u8.ToArray()));
    }

    [Fact]
    public async Task An_fd_url_serves_the_inherited_socket()
    {
        var (descriptor, endPoint) = Kestrel.FileHandleTests.BindAndHandOver(alreadyListening: true);

        await using var host = await EchoHost.StartAsync(EchoHost.Endpoints($"fd:{descriptor}"));

        Assert.Equal(endPoint, host.EndPoint);
        Assert.Equal("fd"u8.ToArray(), await EchoClient.RoundTripAsync(endPoint, "fd"u8.ToArray()));
    }

    [Fact]
    public async Task An_endpoint_overrides_a_transport_option_for_itself_alone()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
        settings["NetStream:Backlog"] = "50";
        settings["NetStream:Endpoints:E1:Backlog"] = "7";
        await using var host = await EchoHost.StartAsync(settings);
        var server = host.Host.Services.GetServices<IHostedService>().OfType<NetStreamServer>().Single();

        Assert.Equal([50, 7], server.BoundListeners.Select(l => Transport.ListenTests.KernelBacklog(l.Socket)));
    }

    [Fact]
    public async Task A_missing_url_fails_start_naming_the_key()
    {
        var error = await EchoHost.StartFailsAsync(new Dictionary<string, string?> { ["NetStream:Endpoints:Echo:MaxConnections"] = "3" });

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("NetStream:Endpoints:Echo:Url", error.Message);
    }

    [Fact]
    public async Task No_endpoints_fails_start_naming_the_section()
    {
        var error = await EchoHost.StartFailsAsync(new Dictionary<string, string?>());

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("NetStream:Endpoints", error.Message);
    }

    [Fact]
    public async Task A_negative_endpoint_backlog_fails_start_naming_the_key_and_the_value()
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings["NetStream:Endpoints:E0:Backlog"] = "-3";

        var error = await EchoHost.StartFailsAsync(settings);

        Assert.Contains("NetStream:Endpoints:E0:Backlog", error.Message);
        Assert.Contains("-3", error.Message);
    }

    [Theory]
    [InlineData("NetStream:MaxConnections", "0")]
    [InlineData("NetStream:ShutdownTimeout", "-00:00:01")]
    [InlineData("NetStream:ShutdownTimeout", "30.00:00:00")]
    [InlineData("NetStream:Endpoints:E0:MaxConnections", "-1")]
    [InlineData("NetStream:Hooks:Timeout", "30.00:00:00")]
    public async Task A_bad_server_option_fails_start_naming_the_key_and_the_value(string key, string value)
    {
        var settings = EchoHost.Endpoints("tcp://127.0.0.1:0");
        settings[key] = value;

        var error = await EchoHost.StartFailsAsync(settings);

        Assert.Contains($"{key} = '{value}'", error.Message);
    }

    [Fact]
    public async Task A_port_in_use_fails_start_with_address_in_use_naming_the_endpoint_key()
    {
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        squatter.Listen();
        var url = $"tcp://127.0.0.1:{((IPEndPoint)squatter.LocalEndPoint!).Port}";

        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints("tcp://127.0.0.1:0", url));

        Assert.IsType<AddressInUseException>(error);
        Assert.Contains("NetStream:Endpoints:E1:Url", error.Message);
        Assert.Contains(url, error.Message);
    }

    [Fact]
    public async Task A_unix_path_in_a_missing_directory_fails_start_naming_the_key_and_the_directory()
    {
        var directory = Path.Combine(Listeners.TempDirectory(), "missing");
        var url = "unix:" + Path.Combine(directory, "e.sock");

        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints(url));

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains($"NetStream:Endpoints:E0:Url = '{url}'", error.Message);
        Assert.Contains($"the directory {directory} does not exist", error.Message);
    }

    [Fact]
    public async Task An_address_not_of_this_host_fails_start_saying_so()
    {
        // 192.0.2.0/24 is TEST-NET-1, documentation only: no host has it.
        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints("tcp://192.0.2.1:0"));

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("NetStream:Endpoints:E0:Url = 'tcp://192.0.2.1:0'", error.Message);
        Assert.Contains("not one of this host's", error.Message);
    }

    [Fact]
    public async Task An_fd_url_that_is_not_a_socket_fails_start_and_leaves_the_descriptor_open()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "not-a-socket");
        using var file = File.Create(path);
        var descriptor = file.SafeFileHandle.DangerousGetHandle();

        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints($"fd:{descriptor}"));

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains($"NetStream:Endpoints:E0:Url = 'fd:{descriptor}'", error.Message);
        Assert.Contains($"is not a socket: it is {path}", error.Message);
        file.WriteByte(1); // still open: not closed by a socket that wrongly took it
        file.Flush();
    }

    [Fact]
    public async Task An_fd_url_that_is_not_open_fails_start_saying_so()
    {
        // Far above this process's descriptors, under the kernel's limit.
        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints("fd:19999"));

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("NetStream:Endpoints:E0:Url = 'fd:19999'", error.Message);
        Assert.Contains("is not open in this process", error.Message);
    }

    [Fact]
    public async Task A_failed_start_releases_the_endpoints_it_had_bound()
    {
        var path = Path.Combine(Listeners.TempDirectory(), "e.sock");
        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints("unix:" + path, "http://x:1"));

        Assert.IsType<InvalidOperationException>(error);
        Assert.False(File.Exists(path));
    }

    [Theory]
    [InlineData("systemd:")]
    [InlineData("systemd:0")]
    [InlineData("systemd:echo")]
    public async Task A_systemd_url_without_socket_activation_fails_start_naming_the_key_the_value_and_LISTEN_FDS(string url)
    {
        // The test process was not started by systemd: no LISTEN_FDS.
        Assert.Null(Environment.GetEnvironmentVariable("LISTEN_FDS"));

        var error = await EchoHost.StartFailsAsync(EchoHost.Endpoints(url));

        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains($"NetStream:Endpoints:E0:Url = '{url}'", error.Message);
        Assert.Contains("LISTEN_FDS is not set", error.Message);
    }
}
