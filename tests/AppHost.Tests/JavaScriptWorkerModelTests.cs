using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableTask.AppHost.Tests;

/// <summary>How the AppHost declares the JavaScript sample worker (the model only, nothing started).</summary>
public sealed class JavaScriptWorkerModelTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("apphost-tests-js-").FullName;

    [Fact]
    public async Task WorkerRunsNodeOnWorkerMjsInTheSamplesJsFolderAfterTheScheduler()
    {
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            [$"--Parameters:store-data-path={Path.Combine(Path.GetTempPath(), "apphost-tests-store-model")}"]);
        var folder = Repository.PathOf("SampleFunctionApp", "js");

        var worker = builder.Resources.OfType<ExecutableResource>().SingleOrDefault(r => r.Name == "samples-js");

        Assert.True(worker is not null, "No 'samples-js' resource: the AppHost found no 'node' on the PATH (the test machines must have Node.js).");
        Assert.Equal("node", Path.GetFileNameWithoutExtension(worker.Command));
        Assert.Equal(Path.GetFullPath(folder), Path.GetFullPath(worker.WorkingDirectory));
        Assert.Equal(["worker.mjs"], await ArgsAsync(worker));
        var waits = worker.Annotations.OfType<WaitAnnotation>().ToList();
        Assert.Contains(waits, w => w.Resource.Name == "scheduler" && w.WaitType == WaitType.WaitUntilHealthy);
        Assert.Contains(worker.Annotations.OfType<ResourceRelationshipAnnotation>(), r => r.Resource.Name == "scheduler" && r.Type == "Reference");
        Assert.NotEmpty(worker.Annotations.OfType<HealthCheckAnnotation>());

        // npm ci runs first only when the packages are missing or stale, and the worker waits for it to finish.
        var install = builder.Resources.OfType<ExecutableResource>().SingleOrDefault(r => r.Name == "samples-js-install");
        Assert.Equal(JavaScriptWorkerExtensions.NeedsInstall(folder), install is not null);
        if (install is not null)
        {
            Assert.Equal("npm", Path.GetFileNameWithoutExtension(install.Command));
            Assert.Equal("ci", (await ArgsAsync(install))[0]);
            Assert.Contains(waits, w => w.Resource == install && w.WaitType == WaitType.WaitForCompletion);
        }
    }

    [Fact]
    public void PackagesNeedAnInstallWhenMissing()
    {
        File.WriteAllText(Path.Combine(_folder, "package-lock.json"), "{}");

        Assert.True(JavaScriptWorkerExtensions.NeedsInstall(_folder));
    }

    [Fact]
    public void PackagesNeedAnInstallWhenTheLockFileChangedSinceTheLastInstall()
    {
        var installed = InstalledLockFile();
        var locked = Path.Combine(_folder, "package-lock.json");
        File.WriteAllText(locked, "{}");
        File.SetLastWriteTimeUtc(installed, DateTime.UtcNow.AddMinutes(-5));
        File.SetLastWriteTimeUtc(locked, DateTime.UtcNow);

        Assert.True(JavaScriptWorkerExtensions.NeedsInstall(_folder));
    }

    [Fact]
    public void PackagesInstalledAfterTheLastChangeOfTheLockFileNeedNoInstall()
    {
        var installed = InstalledLockFile();
        var locked = Path.Combine(_folder, "package-lock.json");
        File.WriteAllText(locked, "{}");
        File.SetLastWriteTimeUtc(locked, DateTime.UtcNow.AddMinutes(-5));
        File.SetLastWriteTimeUtc(installed, DateTime.UtcNow);

        Assert.False(JavaScriptWorkerExtensions.NeedsInstall(_folder));
    }

    /// <summary>node_modules/.package-lock.json, which npm writes after every install.</summary>
    string InstalledLockFile()
    {
        var path = Path.Combine(_folder, "node_modules", ".package-lock.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "{}");
        return path;
    }

    static async Task<List<string>> ArgsAsync(IResource resource)
    {
        var result = await ExecutionConfigurationBuilder.Create(resource)
            .WithArgumentsConfig()
            .BuildAsync(new DistributedApplicationExecutionContext(DistributedApplicationOperation.Run), NullLogger.Instance, CancellationToken.None);
        return result.Arguments.Select(a => a.Value).ToList();
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
