using System.Diagnostics;
using DurableTask.Benchmarks.Backends;

namespace DurableTask.Benchmarks.Runner;

/// <summary>
/// The default role: for each scenario and backend, a fresh backend process and a fresh load process; then one
/// markdown table comparing the backends.
/// </summary>
static class BenchmarkRunner
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        if (options.Backends.Any(b => b.StartsWith("ours", StringComparison.Ordinal)) && OursBackend.LocateScheduler(options.SchedulerDll) is null)
        {
            Console.Error.WriteLine("Scheduler.dll not found: build it (dotnet build -c Release Scheduler) or pass --scheduler-dll PATH.");
            return 2;
        }

        if (options.Backends.Any(b => b.StartsWith("base-", StringComparison.Ordinal)) && (options.BaselineDll is null || !File.Exists(options.BaselineDll)))
        {
            Console.Error.WriteLine("The base-* backends run the scheduler of --baseline-dll PATH (a built Scheduler.dll), which is missing.");
            return 2;
        }

        int waitingExit = 0;
        if (options.Scenarios.Contains(WaitingInstancesRunner.Scenario))
        {
            waitingExit = await WaitingInstancesRunner.RunAsync(options);
            if (options.Scenarios.Count == 1) return waitingExit;
        }

        var total = Stopwatch.StartNew();
        var results = new List<ScenarioResult>();
        foreach (var scenario in options.Scenarios.Where(s => s != WaitingInstancesRunner.Scenario))
        {
            for (int round = 0; round < options.Rounds; round++)
            {
                // Every other round in reverse order, so a machine that speeds up or slows down during a round
                // favours no backend over the rounds.
                var runs = round % 2 == 0 ? options.Runs : options.Runs.Reverse().ToList();
                foreach (var run in runs)
                {
                    Console.WriteLine(options.Rounds > 1 ? $"== {scenario} on {run.Name}, round {round + 1} of {options.Rounds}" : $"== {scenario} on {run.Name}");
                    var result = await RunOneAsync(options, scenario, run);
                    result.Round = round;
                    results.Add(result);
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine(ResultTable.Render(options, results, total.Elapsed));

        if (options.JsonPath is not null)
            await File.WriteAllTextAsync(options.JsonPath, ScenarioResult.ToJson(results));

        return results.Any(r => r.Failed) ? 1 : waitingExit;
    }

    static async Task<ScenarioResult> RunOneAsync(BenchOptions options, string scenario, BackendRun run)
    {
        var backend = run.Backend;
        var port = Ports.GetFree();
        bool ours = BenchOptions.IsScheduler(backend);
        var backendArgs = new List<string> { "--role", ours ? "backend-ours" : $"backend-{backend}", "--port", $"{port}" };
        if (ours)
        {
            backendArgs.AddRange(["--store", options.StoreOf(backend), "--replicas", $"{run.Replicas}"]);
            if (options.DllOf(backend) is { } dll)
                backendArgs.AddRange(["--scheduler-dll", Path.GetFullPath(dll)]);
        }

        var backendLog = new OutputTail();
        using var backendProcess = StartSelf(backendArgs, redirectStdin: true, ours ? null : SchedulerRuntime);
        var ready = new TaskCompletionSource<Ready.Backend>(TaskCreationOptions.RunContinuationsAsynchronously);
        backendProcess.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            if (Ready.TryParse(e.Data, out var served))
                ready.TrySetResult(served);
            else
                backendLog.Add(e.Data);
        };
        backendProcess.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                backendLog.Add(e.Data);
        };
        backendProcess.BeginOutputReadLine();
        backendProcess.BeginErrorReadLine();

        try
        {
            // Further replicas start only once the first serves: two scheduler start-ups in a row.
            var startLimit = TimeSpan.FromSeconds(run.Replicas > 1 ? 150 : 90);
            var started = await Task.WhenAny(ready.Task, backendProcess.WaitForExitAsync(), Task.Delay(startLimit));
            if (started != ready.Task)
                return Failed(scenario, run.Name, $"backend did not start: {backendLog}");

            var served = await ready.Task;
            var outPath = Path.Combine(Path.GetTempPath(), $"dts-bench-{Guid.NewGuid():N}.json");
            var loadArgs = new List<string>
            {
                "--role", "load", "--scenario", scenario, "--address", string.Join(',', served.Addresses),
                "--backend-pid", string.Join(',', served.Pids),
                "--out", outPath, "--n", $"{options.Orchestrations}", "--warmup", $"{options.Warmup}",
                "--fan-out", $"{options.FanOut}", "--signals", $"{options.Signals}", "--entities", $"{options.Entities}",
                "--steps", $"{options.Steps}", "--calls", $"{options.Calls}", "--input-bytes", $"{options.InputBytes}", "--timeout", $"{options.TimeoutSeconds}",
            };
            if (served.RedisPid is int redisPid)
                loadArgs.AddRange(["--redis-pid", $"{redisPid}"]);

            using var load = StartSelf(loadArgs, redirectStdin: false, LoadRuntime);
            load.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    Console.WriteLine($"   {e.Data}");
            };
            load.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    Console.WriteLine($"   {e.Data}");
            };
            load.BeginOutputReadLine();
            load.BeginErrorReadLine();

            await Task.WhenAny(load.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(options.TimeoutSeconds + 60)));
            if (!load.HasExited)
            {
                load.Kill(entireProcessTree: true);
                return Failed(scenario, run.Name, "load process did not finish");
            }

            if (!File.Exists(outPath))
                return Failed(scenario, run.Name, $"load process exited with {load.ExitCode} and no result; backend output: {backendLog}");

            var result = ScenarioResult.FromJson(await File.ReadAllTextAsync(outPath));
            File.Delete(outPath);
            result.Backend = run.Name;
            if (backendProcess.HasExited)
            {
                result.Failed = true;
                result.Message = $"backend exited during the run ({backendProcess.ExitCode}): {backendLog}";
            }
            else if (result.Failed && backendLog.Count > 0)
            {
                result.Message += $"; backend output: {backendLog}";
            }

            return result;
        }
        finally
        {
            await StopAsync(backendProcess);
        }
    }

    static async Task StopAsync(Process backend)
    {
        if (backend.HasExited)
            return;

        // Closing standard input asks the backend role to stop (and to stop the schedulers and redis-server it started).
        try
        {
            backend.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        await Task.WhenAny(backend.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(10)));
        if (!backend.HasExited)
        {
            backend.Kill(entireProcessTree: true);
            await backend.WaitForExitAsync();
        }
    }

    /// <summary>
    /// The runtime settings the scheduler ships with (Scheduler.csproj: server GC with one heap, not concurrent, and a
    /// gen0 budget of at most 64 MB, no spinning and no hill climbing in the thread pool, tier-up without a
    /// call-counting delay and without tiered PGO), given to the reference's process too, so the comparison is like for
    /// like (this program's own runtimeconfig, which the reference's process would otherwise use, has tiered PGO on).
    /// </summary>
    static readonly Dictionary<string, string> SchedulerRuntime = new()
    {
        ["DOTNET_gcServer"] = "1",
        ["DOTNET_GCHeapCount"] = "1",
        ["DOTNET_gcConcurrent"] = "0",
        ["DOTNET_HillClimbing_Disable"] = "1",
        // 64 MB (the runtime reads these values as hexadecimal).
        ["DOTNET_GCGen0MaxBudget"] = "4000000",
        ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0",
        ["DOTNET_TC_CallCountingDelayMs"] = "0",
        ["DOTNET_TieredPGO"] = "0",
    };

    /// <summary>
    /// The load process compiles each method optimized at its first call instead of tiering up later: after the
    /// warm-up the SDK's worker and client were still being recompiled during the timed run (about 0.5 ms of the
    /// load's CPU per hello-cities orchestration on 2 cores), which took CPU from whichever backend was measured.
    /// It also runs with server GC on one heap and no thread-pool spinning, as a worker service would in production
    /// (ASP.NET Core and Functions hosts use server GC): with the console default (workstation GC) the SDK's worker
    /// and client spent 12-24 % of the run paused in about 25 gen0 collections a second, and the backend sat idle
    /// meanwhile (hello-cities on 2 cores, memory store: 7-23 % more orchestrations/s, the load's CPU per
    /// orchestration 15-20 % lower). The same for every backend.
    /// </summary>
    static readonly Dictionary<string, string> LoadRuntime = new()
    {
        ["DOTNET_TC_QuickJit"] = "0",
        ["DOTNET_gcServer"] = "1",
        ["DOTNET_GCHeapCount"] = "1",
        ["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0",
    };

    static Process StartSelf(IEnumerable<string> args, bool redirectStdin, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(Dotnet.HostPath)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
        };
        start.ArgumentList.Add(typeof(BenchOptions).Assembly.Location);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        Dotnet.ScrubEnvironment(start);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        return Process.Start(start) ?? throw new InvalidOperationException("could not start a benchmark process");
    }

    static ScenarioResult Failed(string scenario, string backend, string message) =>
        new() { Scenario = scenario, Backend = backend, Failed = true, Message = message };

    /// <summary>The last lines a backend printed, for error messages.</summary>
    sealed class OutputTail
    {
        readonly Queue<string> _lines = new();

        public int Count
        {
            get { lock (_lines) return _lines.Count; }
        }

        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Enqueue(line);
                while (_lines.Count > 20)
                    _lines.Dequeue();
            }
        }

        public override string ToString()
        {
            lock (_lines)
                return _lines.Count == 0 ? "(none)" : string.Join(" | ", _lines);
        }
    }
}
