using System.Diagnostics;
using System.Net.Sockets;

namespace DurableTask.Benchmarks.Backends;

/// <summary>One scheduler process, started as a user would start it (<c>dotnet Scheduler.dll</c>), and its health.</summary>
static class SchedulerProcess
{
    /// <param name="storeArgs">The store settings (<c>--Scheduler:Store=...</c> and where it keeps its data).</param>
    public static Process Start(string dll, int grpcPort, int httpPort, IEnumerable<string> storeArgs)
    {
        var start = new ProcessStartInfo(Dotnet.HostPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        string[] args =
        [
            dll,
            $"--Scheduler:GrpcPort={grpcPort}",
            $"--Scheduler:HttpPort={httpPort}",
            .. storeArgs,
            "--Scheduler:BindAddress=localhost",
            // The same log level as the reference backend: warnings and errors only.
            "--Logging:LogLevel:Default=Warning",
        ];
        foreach (var arg in args)
            start.ArgumentList.Add(arg);

        Dotnet.ScrubEnvironment(start);
        return Process.Start(start) ?? throw new InvalidOperationException("could not start the scheduler");
    }

    /// <summary>Polls <c>/healthz</c> every 20 ms until it answers 200 (true), the process exits or <paramref name="limit"/> passes.</summary>
    public static async Task<bool> WaitHealthyAsync(Process child, int httpPort, TimeSpan limit)
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

            await Task.Delay(20);
        }

        Console.Error.WriteLine($"the scheduler did not become healthy on port {httpPort} (exit: {(child.HasExited ? child.ExitCode : "still running")})");
        return false;
    }
}
