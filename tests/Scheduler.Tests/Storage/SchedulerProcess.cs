using DurableTask.Scheduler.Tests.Infrastructure;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// The real scheduler as a separate process (<c>dotnet Scheduler.dll</c>), on fixed free ports for its whole life, so
/// it can be killed with SIGKILL and started again on the same ports and data.
/// </summary>
public sealed class SchedulerProcess : IAsyncDisposable
{
    readonly string[] _settings;
    readonly ITestOutputHelper _output;
    readonly Queue<string> _log = new();
    readonly string _workingDirectory;
    Process? _process;
    int _generation;

    public SchedulerProcess(ITestOutputHelper output, string workingDirectory, params string[] settings)
    {
        _output = output;
        _workingDirectory = workingDirectory;
        _settings = settings;
        GrpcPort = FreePort();
        do HttpPort = FreePort(); while (HttpPort == GrpcPort);
    }

    /// <summary>The settings of the Redis store on <paramref name="redis"/>, or of the SQLite store in <paramref name="dataPath"/> without one.</summary>
    public static string[] StoreSettings(RedisServer? redis, string dataPath) => redis is not null
        ? ["--Scheduler:Store=redis", $"--ConnectionStrings:store={redis.ConnectionString}"]
        : ["--Scheduler:Store=sqlite", $"--Scheduler:DataPath={dataPath}"];

    public int GrpcPort { get; }
    public int HttpPort { get; }
    public string Address => $"http://127.0.0.1:{GrpcPort}";
    public string HealthUrl => $"http://127.0.0.1:{HttpPort}/healthz";

    /// <summary>Starts the scheduler and waits until <c>/healthz</c> answers 200.</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("The scheduler is already running.");
        int generation = ++_generation;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(SchedulerDll());
        foreach (string arg in new[]
        {
            $"--Scheduler:GrpcPort={GrpcPort}",
            $"--Scheduler:HttpPort={HttpPort}",
            "--Scheduler:BindAddress=127.0.0.1",
            "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
        }.Concat(_settings))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        process.OutputDataReceived += (_, e) => Record(generation, e.Data);
        process.ErrorDataReceived += (_, e) => Record(generation, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var sw = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (sw.Elapsed < limit)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"The scheduler exited with code {process.ExitCode} while starting:\n{RecentLog()}");
            if (await IsHealthyAsync(http)) return;
            await Task.Delay(50);
        }

        throw new TimeoutException($"The scheduler did not become healthy within {limit.TotalSeconds} s:\n{RecentLog()}");
    }

    /// <summary>SIGKILL: no shutdown of any kind.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>SIGTERM: the scheduler shuts down gracefully (commits what is pending, gives its leases up).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process is null) return;
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.Dispose();
        _process = null;
    }

    public async Task<bool> IsHealthyAsync(HttpClient http)
    {
        try
        {
            using var response = await http.GetAsync(HealthUrl);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    public string RecentLog()
    {
        lock (_log) return string.Join("\n", _log);
    }

    void Record(int generation, string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.Enqueue($"[run {generation}] {line}");
            while (_log.Count > 200) _log.Dequeue();
        }
    }

    /// <summary>Prints what the scheduler wrote (warnings and errors only: it runs at Warning level).</summary>
    public void PrintLog()
    {
        string log = RecentLog();
        if (log.Length == 0) return;
        try
        {
            _output.WriteLine("scheduler log (last lines):\n" + log);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        PrintLog();
    }

    /// <summary>Scheduler.dll is copied next to the test assembly by the project reference.</summary>
    static string SchedulerDll()
    {
        string beside = Path.Combine(AppContext.BaseDirectory, "Scheduler.dll");
        if (File.Exists(beside) && File.Exists(Path.Combine(AppContext.BaseDirectory, "Scheduler.runtimeconfig.json"))) return beside;
        throw new FileNotFoundException($"Scheduler.dll (with Scheduler.runtimeconfig.json) was not found in {AppContext.BaseDirectory}.");
    }

    static int FreePort() => StablePorts.Next();
}

/// <summary>The .NET SDK's worker and client in the test process, against a scheduler process (default task hub).</summary>
public sealed class SdkHost : IAsyncDisposable
{
    readonly IHost _host;

    SdkHost(IHost host)
    {
        _host = host;
        Client = host.Services.GetRequiredService<DurableTaskClient>();
    }

    public DurableTaskClient Client { get; }

    public static async Task<SdkHost> StartAsync(string address, Action<DurableTaskRegistry> tasks)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.None);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(tasks);
            b.UseGrpc(o => o.Address = address);
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(o => o.Address = address));
        var host = builder.Build();
        await host.StartAsync();
        return new SdkHost(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopWithinAsync(TimeSpan.FromSeconds(10));

        _host.Dispose();
    }
}
