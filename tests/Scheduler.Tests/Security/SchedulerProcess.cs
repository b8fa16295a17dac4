using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// The scheduler as its own process (the built Scheduler.dll), for tests where the scheduler might die: a crash then fails
/// the test with the process's output instead of taking the test host down with it.
/// </summary>
public sealed class SchedulerProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly ConcurrentQueue<string> _output = new();
    string? _dataPath;

    SchedulerProcess(Process process, int grpcPort, int httpPort)
    {
        _process = process;
        GrpcPort = grpcPort;
        HttpPort = httpPort;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
    }

    public int GrpcPort { get; }
    public int HttpPort { get; }
    public string GrpcAddress => $"http://127.0.0.1:{GrpcPort}";
    public string HttpAddress => $"http://127.0.0.1:{HttpPort}";
    public bool HasExited => _process.HasExited;
    public IReadOnlyList<string> Output => _output.ToArray();

    /// <summary>Why the process is gone: exit code and the end of its output.</summary>
    public string Obituary => HasExited
        ? $"The scheduler process exited with code {_process.ExitCode}. Last output:\n{string.Join("\n", _output.TakeLast(40))}"
        : "The scheduler process is running.";

    void Keep(string? line)
    {
        if (line is not null && _output.Count < 50_000) _output.Enqueue(line);
    }

    public static async Task<SchedulerProcess> StartAsync(IEnumerable<string> settings)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Scheduler.dll");
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        for (int attempt = 0; ; attempt++)
        {
            int grpcPort = FreePort(), httpPort = FreePort();
            while (httpPort == grpcPort) httpPort = FreePort();
            string dataPath = TestStore.NewDataPath();
            var info = new ProcessStartInfo(dotnet)
            {
                WorkingDirectory = AppContext.BaseDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(dll);
            foreach (var arg in (string[])[$"--Scheduler:GrpcPort={grpcPort}", $"--Scheduler:HttpPort={httpPort}", "--Scheduler:BindAddress=127.0.0.1",
                         "--Logging:LogLevel:Default=Warning",
                         $"--Scheduler:Store={TestStore.Name}", $"--Scheduler:DataPath={dataPath}", .. settings])
                info.ArgumentList.Add(arg);
            info.Environment["DOTNET_ENVIRONMENT"] = "Production";
            info.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");

            var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start the scheduler process.");
            var scheduler = new SchedulerProcess(process, grpcPort, httpPort) { _dataPath = dataPath };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (await scheduler.WaitHealthyAsync()) return scheduler;
            string obituary = scheduler.Obituary;
            await scheduler.DisposeAsync();
            if (attempt == 2 || !obituary.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException("The scheduler process did not become healthy. " + obituary);
        }
    }

    async Task<bool> WaitHealthyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline && !HasExited)
        {
            if (await IsHealthyAsync(http)) return true;
            await Task.Delay(100);
        }

        return false;
    }

    public async Task<bool> IsHealthyAsync(HttpClient http)
    {
        try
        {
            using var response = await http.GetAsync($"{HttpAddress}/healthz");
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _process.Dispose();
        TestStore.Delete(_dataPath);
    }

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
