using System.Text;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableTask.AppHost.Tests;

/// <summary>
/// One running AppHost shared by a test collection. The store runs as Debian's redis-server (the path a machine without
/// a container runtime takes), with its snapshot in a temporary folder.
/// </summary>
public sealed class AppHostFixture : IAsyncLifetime
{
    public static readonly string[] Resources = ["store", "scheduler", "dashboard", "samples"];

    readonly string _dataPath = Directory.CreateTempSubdirectory("apphost-tests-store-").FullName;
    DistributedApplication? _app;

    public DistributedApplication App => _app ?? throw new InvalidOperationException("The AppHost has not started.");

    public async Task InitializeAsync()
    {
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
        [
            "--DcpPublisher:WaitForResourceCleanup=false",
            "--Parameters:store-runtime=executable",
            $"--Parameters:store-data-path={_dataPath}",
        ]);
        builder.Services.AddLogging(logging => logging
            .SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Aspire.Hosting.Dcp", LogLevel.Error));

        _app = await builder.BuildAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await _app.StartAsync(cts.Token);
    }

    /// <summary>Waits until a resource reports healthy (all of its health checks pass).</summary>
    public async Task<ResourceEvent> WaitHealthyAsync(string resource)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        return await App.ResourceNotifications.WaitForResourceHealthyAsync(resource, cts.Token);
    }

    /// <summary>The environment variables DCP gives a resource's process, resolved as at its start.</summary>
    public async Task<IReadOnlyDictionary<string, string>> EnvironmentOfAsync(string name)
    {
        var context = App.Services.GetRequiredService<DistributedApplicationExecutionContext>();
        var result = await ExecutionConfigurationBuilder.Create(Resource(name))
            .WithEnvironmentVariablesConfig()
            .BuildAsync(context, NullLogger.Instance, CancellationToken.None);
        return result.EnvironmentVariables.ToDictionary(e => e.Key, e => e.Value);
    }

    /// <summary>
    /// What a resource's process has written to its console so far (for failure messages). Aspire streams a console
    /// only while someone watches it, and then from the process's start; the watch ends after a few seconds.
    /// </summary>
    public async Task<string> ConsoleOfAsync(string name)
    {
        if (!App.ResourceNotifications.TryGetCurrentState(name, out var state))
        {
            return $"({name} has not started)";
        }

        var console = new StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        try
        {
            // By the process's id (the name plus a suffix): the console belongs to that instance.
            await foreach (var batch in App.Services.GetRequiredService<ResourceLoggerService>().WatchAsync(state.ResourceId).WithCancellation(cts.Token))
            {
                foreach (var line in batch)
                {
                    console.AppendLine(line.Content);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return console.ToString();
    }

    public IResource Resource(string name) =>
        App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == name);

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
            // redis-server may still be writing its last snapshot; the folder is in the temp directory anyway.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class AppHostCollection : ICollectionFixture<AppHostFixture>
{
    public const string Name = "AppHost";
}
