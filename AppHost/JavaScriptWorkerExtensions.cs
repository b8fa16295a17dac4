using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Aspire.Hosting;

/// <summary>
/// The JavaScript sample worker (<c>SampleFunctionApp/js</c>): <c>node worker.mjs</c> as an executable, run only when
/// Node.js is installed and only locally (azd deploys containers, never executables).
/// </summary>
public static class JavaScriptWorkerExtensions
{
    /// <summary>The worker's folder, relative to the AppHost.</summary>
    public static readonly string WorkerFolder = Path.Combine("..", "SampleFunctionApp", "js");

    /// <summary>
    /// Adds <paramref name="name"/> (<c>node worker.mjs</c>), connected to <paramref name="scheduler"/>. When the
    /// folder's packages are missing or older than its <c>package-lock.json</c>, <c>{name}-install</c>
    /// (<c>npm ci</c>) runs first and the worker waits for it to finish. Returns null, and logs why at start, when
    /// publishing or when <c>node</c> (or, for a needed install, <c>npm</c>) is not on the PATH.
    /// </summary>
    public static IResourceBuilder<ExecutableResource>? AddJavaScriptWorker(
        this IDistributedApplicationBuilder builder, string name, IResourceBuilder<ProjectResource> scheduler)
    {
        if (builder.ExecutionContext.IsPublishMode)
        {
            return null;
        }

        var folder = Path.GetFullPath(WorkerFolder, builder.AppHostDirectory);
        var node = ProgramPath.Find("node");
        if (node is null)
        {
            LogAtStart(builder, $"Node.js ('node') is not on the PATH: the JavaScript sample worker '{name}' is not started.");
            return null;
        }

        IResourceBuilder<ExecutableResource>? install = null;
        if (NeedsInstall(folder))
        {
            var npm = ProgramPath.Find("npm");
            if (npm is null)
            {
                LogAtStart(builder, $"'npm' is not on the PATH and {folder} has no installed packages: the JavaScript sample worker '{name}' is not started.");
                return null;
            }

            // npm ci replaces node_modules: it runs only when the packages are missing or stale, so that a worker
            // already running from this folder (another AppHost, a test) never sees its packages disappear.
            install = builder.AddExecutable($"{name}-install", npm, folder, "ci", "--no-audit", "--no-fund", "--loglevel=error")
                .WithIconName("ArrowDownload");
        }

        var worker = builder.AddExecutable(name, node, folder, "worker.mjs")
            .WithReference(scheduler)
            .WaitFor(scheduler)
            // The worker serves GET /health on this port while it runs, so it has a health check like every resource.
            .WithHttpEndpoint(name: "health", env: "HEALTH_PORT")
            .WithHttpHealthCheck("/health", endpointName: "health")
            .WithIconName("Code");
        if (install is not null)
        {
            worker.WaitForCompletion(install);
        }

        return worker;
    }

    /// <summary>
    /// True when <c>npm ci</c> has not run in <paramref name="folder"/> since its <c>package-lock.json</c> last changed:
    /// npm writes <c>node_modules/.package-lock.json</c> after every install.
    /// </summary>
    public static bool NeedsInstall(string folder)
    {
        var installed = new FileInfo(Path.Combine(folder, "node_modules", ".package-lock.json"));
        var locked = new FileInfo(Path.Combine(folder, "package-lock.json"));
        return !installed.Exists || (locked.Exists && locked.LastWriteTimeUtc > installed.LastWriteTimeUtc);
    }

    static void LogAtStart(IDistributedApplicationBuilder builder, string message) =>
        builder.Eventing.Subscribe<BeforeStartEvent>((e, _) =>
        {
            e.Services.GetRequiredService<ILoggerFactory>().CreateLogger("AppHost").LogWarning("{Message}", message);
            return Task.CompletedTask;
        });
}
