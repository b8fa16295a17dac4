using System.Text.Json.Nodes;

namespace DurableTask.AppHost.Tests;

/// <summary>The Aspire manifest azd reads, produced as the README says: dotnet run --project AppHost -- --publisher manifest.</summary>
public sealed class ManifestFixture : IAsyncLifetime
{
    readonly string _outputPath = Directory.CreateTempSubdirectory("apphost-tests-manifest-").FullName;

    public JsonObject Resources { get; private set; } = new();

    public JsonObject Resource(string name) =>
        Resources[name]?.AsObject() ?? throw new Xunit.Sdk.XunitException($"The manifest has no resource '{name}'.");

    public async Task InitializeAsync()
    {
        var file = Path.Combine(_outputPath, "aspire-manifest.json");
        var (exitCode, output, error) = await Repository.RunAsync(
            "dotnet",
            ["run", "--project", Repository.PathOf("AppHost"), "--no-build", "-c", Repository.Configuration,
             "--", "--publisher", "manifest", "--output-path", file],
            Repository.Root,
            TimeSpan.FromMinutes(3));
        if (exitCode != 0 || !File.Exists(file))
        {
            throw new InvalidOperationException($"Publishing the manifest failed ({exitCode}):\n{output}\n{error}");
        }

        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(file))!.AsObject();
        Resources = manifest["resources"]!.AsObject();
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_outputPath, recursive: true);
        return Task.CompletedTask;
    }
}
