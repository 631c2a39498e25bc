using System.Reflection;
using System.Runtime.CompilerServices;
using NetStream.Hosting;
using NetStream.Transport;

namespace NetStream.Tests.PublicApi;

/// <summary>
/// The public surface of each shipped assembly is checked in next to this file (<c>NetStream.Transport.txt</c>,
/// <c>NetStream.Hosting.txt</c>), so that a change to it shows up in review. On a mismatch the test writes the
/// actual listing as <c>*.received.txt</c> beside the snapshot; if the change is meant, <c>mv</c> it over the snapshot.
/// </summary>
public sealed class PublicApiTests
{
    private static readonly Dictionary<string, Assembly> Assemblies = new(StringComparer.Ordinal)
    {
        ["NetStream.Transport"] = typeof(NetStreamListener).Assembly,
        ["NetStream.Hosting"] = typeof(NetStreamServerOptions).Assembly,
    };

    [Theory]
    [InlineData("NetStream.Transport")]
    [InlineData("NetStream.Hosting")]
    public void The_public_surface_matches_the_checked_in_snapshot(string assemblyName)
    {
        var actual = PublicApiListing.Of(Assemblies[assemblyName]);
        var expectedPath = Path.Combine(SourceDirectory(), assemblyName + ".txt");
        var receivedPath = Path.ChangeExtension(expectedPath, ".received.txt");
        var expected = File.Exists(expectedPath)
            ? File.ReadAllLines(expectedPath).Where(line => line.Length > 0).ToList()
            : [];

        if (actual.SequenceEqual(expected, StringComparer.Ordinal))
        {
            File.Delete(receivedPath);
            return;
        }

        File.WriteAllText(receivedPath, string.Concat(actual.Select(line => line + "\n")));
        Assert.Fail(Difference(assemblyName, expected, actual, expectedPath, receivedPath));
    }

    [Fact]
    public void The_listing_spells_signatures_as_csharp_with_defaults_and_nullability()
    {
        var listing = PublicApiListing.Of(typeof(NetStreamListener).Assembly);

        Assert.Contains(
            "NetStream.Transport.NetStreamListener.AcceptAsync(bool withAddressInfo, System.Threading.CancellationToken cancellationToken = default)"
            + " -> System.Threading.Tasks.ValueTask<NetStream.Transport.AcceptedConnection?>",
            listing);
        Assert.DoesNotContain(listing, line => line.Contains('`', StringComparison.Ordinal));
    }

    private static string Difference(string assemblyName, List<string> expected, IReadOnlyList<string> actual, string expectedPath, string receivedPath)
    {
        var added = actual.Except(expected, StringComparer.Ordinal).Select(line => "  + " + line).ToList();
        var removed = expected.Except(actual, StringComparer.Ordinal).Select(line => "  - " + line).ToList();
        var changes = added.Count + removed.Count == 0
            ? ["  (same lines in another order or repeated: the snapshot is hand-edited; regenerate it)"]
            : removed.Concat(added);
        return $"""
            The public API of {assemblyName} differs from its snapshot ({removed.Count} removed, {added.Count} added):
            {string.Join("\n", changes)}
            If the change is meant, accept it with:
              mv {receivedPath} {expectedPath}
            """;
    }

    // This file's folder, where the snapshots are checked in; the copies in the output folder when the build
    // mapped source paths away (deterministic CI builds).
    private static string SourceDirectory([CallerFilePath] string path = "") =>
        Path.GetDirectoryName(path) is { } folder && Directory.Exists(folder)
            ? folder
            : Path.Combine(AppContext.BaseDirectory, "PublicApi");
}
