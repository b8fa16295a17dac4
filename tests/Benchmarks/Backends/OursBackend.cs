using System.Diagnostics;
using System.Net.Sockets;
using System.Reflection;

namespace DurableTask.Benchmarks.Backends;

/// <summary>
/// Runs the built scheduler exactly as a user would (<c>dotnet Scheduler.dll</c>) and reports the child's pid, so
/// the measured process is the scheduler alone.
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

        var dll = LocateScheduler(options.SchedulerDll);
        if (dll is null)
        {
            Console.Error.WriteLine(
                "Scheduler.dll not found: build it (dotnet build -c Release Scheduler) or pass --scheduler-dll PATH.");
            return 2;
        }

        var httpPort = Ports.GetFree();
        var dataPath = Path.Combine(Path.GetTempPath(), $"dts-bench-data-{Guid.NewGuid():N}");
        var start = new ProcessStartInfo(Dotnet.HostPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        foreach (var arg in new[]
                 {
                     dll,
                     $"--Scheduler:GrpcPort={options.Port}",
                     $"--Scheduler:HttpPort={httpPort}",
                     $"--Scheduler:Store={options.Store}",
                     // A fresh, empty store for every run.
                     $"--Scheduler:DataPath={dataPath}",
                     "--Scheduler:BindAddress=localhost",
                     // The same log level as the reference backend: warnings and errors only.
                     "--Logging:LogLevel:Default=Warning",
                 })
        {
            start.ArgumentList.Add(arg);
        }

        Dotnet.ScrubEnvironment(start);

        using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start the scheduler");
        try
        {
            if (!await WaitHealthyAsync(child, httpPort, TimeSpan.FromSeconds(60)))
            {
                Console.Error.WriteLine($"the scheduler did not become healthy on port {httpPort} (exit: {(child.HasExited ? child.ExitCode : "still running")})");
                return 1;
            }

            Ready.Announce(child.Id, $"http://127.0.0.1:{options.Port}");

            using var stopping = new CancellationTokenSource();
            using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
                System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); });
            await Task.WhenAny(Ready.WaitForShutdownAsync(stopping.Token), child.WaitForExitAsync());
            return child.HasExited ? 1 : 0;
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: true);
                await child.WaitForExitAsync();
            }

            if (Directory.Exists(dataPath)) Directory.Delete(dataPath, recursive: true);
        }
    }

    static async Task<bool> WaitHealthyAsync(Process child, int httpPort, TimeSpan limit)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < limit && !child.HasExited)
        {
            try
            {
                using var response = await http.GetAsync($"http://127.0.0.1:{httpPort}/healthz");
                if (response.IsSuccessStatusCode)
                    return true;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SocketException)
            {
            }

            await Task.Delay(100);
        }

        return false;
    }

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
