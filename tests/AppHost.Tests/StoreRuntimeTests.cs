using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace DurableTask.AppHost.Tests;

/// <summary>How the AppHost chooses between the Redis container and the local redis-server (the model only, nothing started).</summary>
public sealed class StoreRuntimeTests
{
    [Fact]
    public async Task AutoRunsTheLocalRedisServerWhenNoContainerRuntimeAnswers()
    {
        var store = await StoreAsync("--ASPIRE_CONTAINER_RUNTIME=no-such-container-runtime");

        var server = Assert.IsType<RedisServerResource>(store);
        Assert.EndsWith("redis-server", server.Command);
    }

    [Fact]
    public async Task ContainerCanBeChosenExplicitly()
    {
        var store = await StoreAsync("--Parameters:store-runtime=container");

        var redis = Assert.IsType<RedisResource>(store);
        var volume = Assert.Single(redis.Annotations.OfType<ContainerMountAnnotation>());
        Assert.Equal(ContainerMountType.Volume, volume.Type);
        Assert.Equal("/data", volume.Target);
    }

    [Fact]
    public async Task AnUnknownChoiceIsRefusedWithTheAllowedValues()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => StoreAsync("--Parameters:store-runtime=vm"));

        var message = error.InnerException?.Message ?? error.Message;
        Assert.Contains("store-runtime", message);
        Assert.Contains("'auto', 'container' or 'executable'", message);
    }

    static async Task<IResource> StoreAsync(params string[] args)
    {
        // Keeps the (otherwise unused) snapshot folder of the local redis-server out of the repository.
        var dataPath = Path.Combine(Path.GetTempPath(), "apphost-tests-store-model");
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            [.. args, $"--Parameters:store-data-path={dataPath}"]);
        return builder.Resources.Single(r => r.Name == "store");
    }
}
