using System.Text.Json.Nodes;

namespace DurableTask.AppHost.Tests;

/// <summary>The manifest describes the topology azd deploys: Redis as a container, the three projects and their references.</summary>
public sealed class ManifestTests(ManifestFixture manifest) : IClassFixture<ManifestFixture>
{
    [Fact]
    public void StoreIsTheRedisContainerWithPersistenceAndADataVolume()
    {
        var store = manifest.Resource("store");

        Assert.Equal("container.v0", (string?)store["type"]);
        Assert.StartsWith("docker.io/library/redis:", (string?)store["image"]);
        Assert.Contains("--save 60 1", string.Join(' ', store["args"]!.AsArray().Select(a => (string?)a)));
        var volume = Assert.Single(store["volumes"]!.AsArray());
        Assert.Equal("/data", (string?)volume!["target"]);
        Assert.Equal(6379, (int?)store["bindings"]!["tcp"]!["targetPort"]);
        Assert.StartsWith("{store.bindings.tcp.host}:{store.bindings.tcp.port},password={store-password.value}", (string?)store["connectionString"]);
        Assert.True((bool?)manifest.Resource("store-password")["inputs"]!["value"]!["secret"]);
    }

    [Fact]
    public void NothingIsAnExecutableBecauseAzdDeploysOnlyContainers()
    {
        var types = manifest.Resources.Select(r => (string?)r.Value!["type"]).ToList();

        Assert.DoesNotContain("executable.v0", types);
    }

    [Fact]
    public void SchedulerListensOnTheContainerPortsWithGrpcOverHttp2()
    {
        var scheduler = manifest.Resource("scheduler");
        var bindings = scheduler["bindings"]!;

        Assert.Equal("project.v0", (string?)scheduler["type"]);
        Assert.EndsWith("Scheduler.csproj", (string?)scheduler["path"]);
        Assert.Equal("http2", (string?)bindings["grpc"]!["transport"]);
        Assert.Equal(8080, (int?)bindings["grpc"]!["targetPort"]);
        Assert.Equal("http", (string?)bindings["http"]!["transport"]);
        Assert.Equal(8081, (int?)bindings["http"]!["targetPort"]);
        Assert.Equal(new[] { "grpc", "http" }, bindings.AsObject().Select(b => b.Key).Order());
    }

    [Fact]
    public void SchedulerReferencesTheStoreTheTaskHubsAndTheStoreChoice()
    {
        var env = manifest.Resource("scheduler")["env"]!;

        Assert.Equal("{scheduler.bindings.grpc.targetPort}", (string?)env["Scheduler__GrpcPort"]);
        Assert.Equal("{scheduler.bindings.http.targetPort}", (string?)env["Scheduler__HttpPort"]);
        Assert.Equal("*", (string?)env["Scheduler__BindAddress"]);
        Assert.Equal("{store.connectionString}", (string?)env["ConnectionStrings__store"]);
        Assert.Equal("{task-hub-names.value}", (string?)env["DTS_TASK_HUB_NAMES"]);
        Assert.Equal("{scheduler-store.value}", (string?)env["Scheduler__Store"]);
        Assert.Equal("default", DefaultOf("task-hub-names"));
        Assert.Equal("redis", DefaultOf("scheduler-store"));
    }

    [Theory]
    [InlineData("dashboard", "Dashboard.csproj")]
    [InlineData("samples", "SampleFunctionApp.csproj")]
    public void AppsReferenceBothSchedulerEndpoints(string name, string project)
    {
        var app = manifest.Resource(name);
        var env = app["env"]!;

        Assert.Equal("project.v0", (string?)app["type"]);
        Assert.EndsWith(project, (string?)app["path"]);
        Assert.Equal("{scheduler.bindings.grpc.url}", (string?)env["services__scheduler__grpc__0"]);
        Assert.Equal("{scheduler.bindings.http.url}", (string?)env["services__scheduler__http__0"]);
        Assert.NotNull(app["bindings"]!["http"]);
    }

    string? DefaultOf(string parameter)
    {
        var resource = manifest.Resource(parameter);
        Assert.Equal("parameter.v0", (string?)resource["type"]);
        return (string?)resource["inputs"]!["value"]!["default"]!["value"];
    }
}
