using System.Diagnostics;
using System.Reflection;

namespace DurableTask.Benchmarks.Backends;

/// <summary>
/// Runs the built scheduler exactly as a user would (<c>dotnet Scheduler.dll</c>) and reports the child's pid, so
/// the measured process is the scheduler alone. With a Redis store it also starts a fresh redis-server, and
/// <c>--replicas N</c> schedulers on it, reporting every replica's pid and address and the redis-server's pid.
/// </summary>
static class OursBackend
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        if (options.Port <= 0)
        {
            Console.Error.WriteLine("backend-ours needs --port");
            return 2;
        }

        if (options.Replicas is not [var replicas] || (replicas > 1 && options.Store != "redis"))
        {
            Console.Error.WriteLine("backend-ours takes one --replicas count, more than 1 only with --store redis");
            return 2;
        }

        var dll = LocateScheduler(options.SchedulerDll);
        if (dll is null)
        {
            Console.Error.WriteLine(
                "Scheduler.dll not found: build it (dotnet build -c Release Scheduler) or pass --scheduler-dll PATH.");
            return 2;
        }

        // A fresh, empty store for every run.
        var dataPath = Path.Combine(Path.GetTempPath(), $"dts-bench-data-{Guid.NewGuid():N}");
        List<string> storeArgs = [$"--Scheduler:Store={options.Store}", $"--Scheduler:DataPath={dataPath}"];
        RedisServer? redis = null;
        var children = new List<Process>();
        try
        {
            if (options.Store == "redis")
            {
                redis = await RedisServer.StartAsync(TimeSpan.FromSeconds(30));
                storeArgs.Add($"--ConnectionStrings:store={redis.Endpoint}");
            }

            // The first replica serves before the others start, so it takes the task hub's lease and the others
            // forward to it.
            int[] grpcPorts = [options.Port, .. Enumerable.Range(1, replicas - 1).Select(_ => Ports.GetFree())];
            if (!await WaitHealthyAsync(Start(grpcPorts[0])))
                return 1;
            foreach (var replica in grpcPorts[1..].Select(Start).ToList())
            {
                if (!await WaitHealthyAsync(replica))
                    return 1;
            }

            Ready.Announce(new(children.Select(c => c.Id).ToArray(), grpcPorts.Select(p => $"http://127.0.0.1:{p}").ToArray(), redis?.Pid));

            using var stopping = new CancellationTokenSource();
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); });
            await Task.WhenAny([Ready.WaitForShutdownAsync(stopping.Token), .. children.Select(c => c.WaitForExitAsync())]);
            return children.Any(c => c.HasExited) ? 1 : 0;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Console.Error.WriteLine($"backend-ours could not start: {e.Message}");
            return 1;
        }
        finally
        {
            foreach (var child in children)
            {
                if (!child.HasExited)
                {
                    child.Kill(entireProcessTree: true);
                    await child.WaitForExitAsync();
                }

                child.Dispose();
            }

            if (redis is not null) await redis.DisposeAsync();
            if (Directory.Exists(dataPath)) Directory.Delete(dataPath, recursive: true);
        }

        (Process Child, int HttpPort) Start(int grpcPort)
        {
            var httpPort = Ports.GetFree();
            var child = SchedulerProcess.Start(dll, grpcPort, httpPort, storeArgs);
            children.Add(child);
            return (child, httpPort);
        }
    }

    static Task<bool> WaitHealthyAsync((Process Child, int HttpPort) replica) =>
        SchedulerProcess.WaitHealthyAsync(replica.Child, replica.HttpPort, TimeSpan.FromSeconds(60));

    internal static string? LocateScheduler(string? explicitPath)
    {
        if (explicitPath is not null)
            return File.Exists(explicitPath) ? Path.GetFullPath(explicitPath) : null;

        var root = RepositoryRoot();
        if (root is null)
            return null;

        // Prefer the configuration this program was built in (the project reference builds the scheduler with it).
        var configuration = typeof(OursBackend).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        foreach (var config in new[] { configuration, "Release", "Debug" }.Distinct())
        {
            var candidate = Path.Combine(root, "Scheduler", "bin", config, "net10.0", "Scheduler.dll");
            if (File.Exists(candidate))
                return candidate;
        }

        return null;
    }

    static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Aspire.sln")))
                return dir.FullName;
        }

        return null;
    }
}
