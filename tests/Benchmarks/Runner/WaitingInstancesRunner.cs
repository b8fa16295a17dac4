using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DurableTask.Benchmarks.Backends;
using DurableTask.Benchmarks.Load;
using Grpc.Net.Client;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;

namespace DurableTask.Benchmarks.Runner;

/// <summary>
/// The waiting-instances scenario: many orchestrations that wait for one external event each (approval flows, human
/// interaction), held by a scheduler with a durable store; then a <c>kill -9</c> and a restart on the same store, and
/// every event raised. It measures what such a hub costs and how long it is down: the scheduler's RSS growth while it
/// holds them, its RSS after the restart, the time from the restart to <c>/healthz</c> 200, the time from the first
/// event raised after the restart to its orchestration's completion (worker already connected), and the rate at which
/// the rest complete, each checked for the right output.
/// </summary>
static class WaitingInstancesRunner
{
    public const string Scenario = "waiting-instances";

    sealed class Row
    {
        public required string Backend { get; init; }
        public int Count { get; set; }
        public double StartedPerSecond { get; set; }
        public long RssBeforeBytes { get; set; }
        public long RssHoldingBytes { get; set; }
        public long RssAfterRestartBytes { get; set; }

        /// <summary>RSS a minute after the last instance completed and the queries were answered: what an idle scheduler keeps.</summary>
        public long RssIdleBytes { get; set; }
        public double RestartToHealthySeconds { get; set; }
        public double FirstRaiseMs { get; set; }
        public double CompletedPerSecond { get; set; }

        /// <summary>Milliseconds of each dashboard query (<see cref="Queries"/>) while the instances wait, and after they all completed.</summary>
        public double[] QueriesWaitingMs { get; set; } = [];
        public double[] QueriesCompletedMs { get; set; } = [];
        public string? Failure { get; set; }
    }

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var rows = new List<Row>();
        var total = Stopwatch.StartNew();
        var backends = options.Backends.Where(BenchOptions.IsScheduler).ToList();
        for (int round = 0; round < options.Rounds; round++)
        {
            // The SDK worker and client run in this process: the first run of the process also warms them up, so the
            // backends take turns at going first (A B, then B A, ...), as in the other scenarios.
            foreach (var backend in round % 2 == 0 ? backends : Enumerable.Reverse(backends))
            {
                string label = options.Rounds > 1 ? $"{backend} (round {round + 1})" : backend;
                Console.WriteLine($"== {Scenario} on {label}, {options.Waiting:N0} instances");
                var row = new Row { Backend = label };
                try
                {
                    await RunOneAsync(options, backend, row);
                }
                catch (Exception e) when (e is BenchmarkException or InvalidOperationException or HttpRequestException or Grpc.Core.RpcException or OperationCanceledException)
                {
                    row.Failure = e.Message;
                }

                rows.Add(row);
            }
        }

        Console.WriteLine();
        Console.WriteLine(Render(options, rows, total.Elapsed));
        return rows.Count > 0 && rows.All(r => r.Failure is null) ? 0 : 1;
    }

    static async Task RunOneAsync(BenchOptions options, string backend, Row row)
    {
        string store = options.StoreOf(backend);
        if (store is not ("sqlite" or "redis"))
            throw new BenchmarkException($"{Scenario} needs a durable store (sqlite or redis), not '{store}': the restart is part of it");

        var dll = OursBackend.LocateScheduler(options.DllOf(backend))
            ?? throw new BenchmarkException("Scheduler.dll not found: build it (dotnet build -c Release Scheduler) or pass --scheduler-dll PATH.");
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(options.TimeoutSeconds));
        var token = limit.Token;

        var dataPath = Path.Combine(Path.GetTempPath(), $"dts-bench-data-{Guid.NewGuid():N}");
        List<string> storeArgs = [$"--Scheduler:Store={store}", $"--Scheduler:DataPath={dataPath}"];
        RedisServer? redis = null;
        Process? scheduler = null;
        IHost? host = null;
        try
        {
            if (store == "redis")
            {
                redis = await RedisServer.StartAsync(TimeSpan.FromSeconds(30));
                storeArgs.Add($"--ConnectionStrings:store={redis.Endpoint}");
            }

            int grpcPort = Ports.GetFree(), httpPort = Ports.GetFree();
            scheduler = SchedulerProcess.Start(dll, grpcPort, httpPort, storeArgs);
            if (!await SchedulerProcess.WaitHealthyAsync(scheduler, httpPort, TimeSpan.FromSeconds(60)))
                throw new BenchmarkException("the scheduler did not start");

            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}/api/v1/taskhubs/default/"), Timeout = TimeSpan.FromSeconds(30) };
            using var workerChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
            using var clientChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
            host = BuildHost(workerChannel, clientChannel);
            await host.StartAsync(token);
            var client = host.Services.GetRequiredService<DurableTaskClient>();

            // Warm-up: the same orchestration end to end, so the measured part does not include compiling it.
            int warm = Math.Min(1000, Math.Max(10, options.Waiting / 100));
            Log($"warm-up: {warm} instances started, raised and completed");
            await ForEachAsync(warm, i => client.ScheduleNewOrchestrationInstanceAsync(Workload.AwaitApproval, null,
                new StartOrchestrationOptions(WarmId(i)), token), token);
            await WaitForCountAsync(api, "Running", warm, token);
            await ForEachAsync(warm, i => client.RaiseEventAsync(WarmId(i), Workload.ApprovalEvent, $"ok-{i}", token), token);
            await WaitForCountAsync(api, "Completed", warm, token);
            await Task.Delay(TimeSpan.FromSeconds(2), token);

            var probe = new ProcessProbe([scheduler.Id]);
            row.RssBeforeBytes = probe.Read().RssBytes;

            Log($"starting {options.Waiting:N0} instances that wait for an event");
            var started = Stopwatch.StartNew();
            await ForEachAsync(options.Waiting, i => client.ScheduleNewOrchestrationInstanceAsync(Workload.AwaitApproval, null,
                new StartOrchestrationOptions(Id(i)), token), token, progress: "started");
            await WaitForCountAsync(api, "Running", options.Waiting, token);
            row.StartedPerSecond = options.Waiting / started.Elapsed.TotalSeconds;
            row.Count = options.Waiting;
            await Task.Delay(TimeSpan.FromSeconds(3), token);
            row.RssHoldingBytes = probe.Read().RssBytes;
            Log($"all {options.Waiting:N0} waiting ({row.StartedPerSecond:F0}/s); scheduler RSS {Mib(row.RssHoldingBytes)} MiB");
            row.QueriesWaitingMs = await TimeQueriesAsync(api, token);

            Log("kill -9, then a restart on the same store");
            scheduler.Kill();
            await scheduler.WaitForExitAsync(token);
            scheduler.Dispose();
            var restart = Stopwatch.StartNew();
            scheduler = SchedulerProcess.Start(dll, grpcPort, httpPort, storeArgs);
            if (!await SchedulerProcess.WaitHealthyAsync(scheduler, httpPort, TimeSpan.FromSeconds(options.TimeoutSeconds)))
                throw new BenchmarkException("the scheduler did not become healthy after the restart");
            row.RestartToHealthySeconds = restart.Elapsed.TotalSeconds;
            probe = new ProcessProbe([scheduler.Id]);
            Log($"healthy {row.RestartToHealthySeconds:F1} s after the restart");

            // The worker reconnects on its own; the first raise is timed once it has.
            await WaitForWorkerAsync(api, token);
            await Task.Delay(TimeSpan.FromSeconds(2), token);
            row.RssAfterRestartBytes = probe.Read().RssBytes;

            var first = Stopwatch.StartNew();
            await client.RaiseEventAsync(Id(0), Workload.ApprovalEvent, "ok-0", token);
            var state = await client.WaitForInstanceCompletionAsync(Id(0), getInputsAndOutputs: true, token);
            row.FirstRaiseMs = first.Elapsed.TotalMilliseconds;
            if (state.RuntimeStatus != OrchestrationRuntimeStatus.Completed || state.ReadOutputAs<string>() != "ok-0")
                throw new BenchmarkException($"'{Id(0)}' ended {state.RuntimeStatus} with '{state.SerializedOutput}' instead of completing with \"ok-0\"");
            Log($"first event after the restart answered in {row.FirstRaiseMs:F0} ms");

            var rest = Stopwatch.StartNew();
            await ForEachAsync(options.Waiting - 1, i => client.RaiseEventAsync(Id(i + 1), Workload.ApprovalEvent, $"ok-{i + 1}", token), token, progress: "raised");
            await WaitForCountAsync(api, "Completed", warm + options.Waiting, token);
            row.CompletedPerSecond = (options.Waiting - 1) / rest.Elapsed.TotalSeconds;

            var counts = await CountsAsync(api, token);
            if (counts.GetValueOrDefault("Failed") != 0 || counts.GetValueOrDefault("Running") != 0 || counts.GetValueOrDefault("Pending") != 0)
                throw new BenchmarkException($"after every event: {string.Join(", ", counts.Select(c => $"{c.Key} {c.Value}"))}");

            // Every instance completed once (the count above); a sample shows each with its own event's payload.
            foreach (int i in Enumerable.Range(0, 200).Select(_ => Random.Shared.Next(options.Waiting)))
            {
                var done = await client.GetInstanceAsync(Id(i), getInputsAndOutputs: true, token)
                    ?? throw new BenchmarkException($"'{Id(i)}' is missing");
                if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed || done.ReadOutputAs<string>() != $"ok-{i}")
                    throw new BenchmarkException($"'{Id(i)}' ended {done.RuntimeStatus} with '{done.SerializedOutput}' instead of \"ok-{i}\"");
            }

            Log($"all completed correctly ({row.CompletedPerSecond:F0}/s)");
            row.QueriesCompletedMs = await TimeQueriesAsync(api, token);
            await Task.Delay(TimeSpan.FromSeconds(65), token);
            row.RssIdleBytes = probe.Read().RssBytes;
            Log($"a minute later, idle: scheduler RSS {Mib(row.RssIdleBytes)} MiB");
        }
        finally
        {
            if (host is not null)
            {
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await host.StopAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                }

                host.Dispose();
            }

            if (scheduler is not null)
            {
                if (!scheduler.HasExited)
                {
                    scheduler.Kill(entireProcessTree: true);
                    await scheduler.WaitForExitAsync(CancellationToken.None);
                }

                scheduler.Dispose();
            }

            if (redis is not null) await redis.DisposeAsync();
            if (Directory.Exists(dataPath)) Directory.Delete(dataPath, recursive: true);
        }
    }

    /// <summary>What the dashboard asks of a hub this size: its first page of running instances and the status counts, whole and under a filter.</summary>
    static readonly (string Label, string Path)[] Queries =
    [
        ("first page of running instances", "orchestrations?status=Running&pageSize=50"),
        ("status counts", "counts"),
        ("counts by name", $"counts?name={Workload.AwaitApproval}"),
        ("counts by id prefix", "counts?prefix=wait-0001"),
    ];

    /// <summary>Each query of <see cref="Queries"/>, timed (the best of three, so a collection in the scheduler does not decide it).</summary>
    static async Task<double[]> TimeQueriesAsync(HttpClient api, CancellationToken token)
    {
        var times = new double[Queries.Length];
        for (int q = 0; q < Queries.Length; q++)
        {
            times[q] = double.MaxValue;
            for (int attempt = 0; attempt < 3; attempt++)
            {
                var clock = Stopwatch.StartNew();
                using var response = await api.GetAsync(Queries[q].Path, token);
                await response.Content.ReadAsByteArrayAsync(token);
                response.EnsureSuccessStatusCode();
                times[q] = Math.Min(times[q], clock.Elapsed.TotalMilliseconds);
                // The JSON API keeps a filtered count for a second: ask again after that.
                await Task.Delay(1100, token);
            }
        }

        Log(string.Join(", ", Queries.Select((x, i) => $"{x.Label} {times[i]:F0} ms")));
        return times;
    }

    static string Id(int i) => $"wait-{i:D8}";

    static string WarmId(int i) => $"warm-{i:D6}";

    static IHost BuildHost(GrpcChannel workerChannel, GrpcChannel clientChannel)
    {
        var builder = Host.CreateApplicationBuilder([]);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Error);
        builder.Services.AddDurableTaskWorker("worker", b =>
        {
            b.AddTasks(Workload.Register);
            b.UseGrpc(workerChannel);
            b.Configure(o =>
            {
                o.Concurrency.MaximumConcurrentOrchestrationWorkItems = 1000;
                o.Concurrency.MaximumConcurrentActivityWorkItems = 1000;
            });
        });
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(clientChannel));
        return builder.Build();
    }

    /// <summary>Runs <paramref name="call"/> for 0..count-1, 64 at a time, logging progress every 10 s when asked.</summary>
    static async Task ForEachAsync(int count, Func<int, Task> call, CancellationToken token, string? progress = null)
    {
        int done = 0;
        var clock = Stopwatch.StartNew();
        using var report = progress is null ? null : new Timer(_ => Log($"{Volatile.Read(ref done):N0} {progress} ({clock.Elapsed.TotalSeconds:F0} s)"),
            null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = token },
            async (i, _) =>
            {
                await call(i);
                Interlocked.Increment(ref done);
            });
    }

    /// <summary>The hub's instance counts by status, from the JSON API (kept by the scheduler as statuses change).</summary>
    static async Task<Dictionary<string, int>> CountsAsync(HttpClient api, CancellationToken token)
    {
        using var json = JsonDocument.Parse(await api.GetStringAsync("counts", token));
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in json.RootElement.EnumerateObject())
        {
            if (!property.Name.Equals("counts", StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var status in property.Value.EnumerateObject()) counts[status.Name] = status.Value.GetInt32();
        }

        return counts;
    }

    static async Task WaitForCountAsync(HttpClient api, string status, int target, CancellationToken token)
    {
        var last = Stopwatch.StartNew();
        while (true)
        {
            int n = (await CountsAsync(api, token)).GetValueOrDefault(status);
            if (n >= target) return;
            if (last.Elapsed > TimeSpan.FromSeconds(10))
            {
                Log($"{n:N0} of {target:N0} {status}");
                last.Restart();
            }

            await Task.Delay(200, token);
        }
    }

    static async Task WaitForWorkerAsync(HttpClient api, CancellationToken token)
    {
        while (true)
        {
            using var json = JsonDocument.Parse(await api.GetStringAsync("workers", token));
            if (json.RootElement.ValueKind == JsonValueKind.Array && json.RootElement.GetArrayLength() > 0) return;
            await Task.Delay(100, token);
        }
    }

    static string Render(BenchOptions options, List<Row> rows, TimeSpan elapsed)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"Waiting instances, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, total {elapsed.TotalMinutes:F1} min");
        s.AppendLine();
        s.AppendLine("| backend | waiting instances | started/s | scheduler RSS growth | per instance | RSS after restart | restart to /healthz 200 | first raise after restart answered | completed/s after restart | RSS 1 min after the last completion | all completed correctly |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in rows)
        {
            if (r.Failure is not null)
            {
                s.AppendLine(CultureInfo.InvariantCulture, $"| {r.Backend} | {options.Waiting:N0} | | | | | | | | | failed: {r.Failure.Replace('|', '/')} |");
                continue;
            }

            long growth = r.RssHoldingBytes - r.RssBeforeBytes;
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Backend} | {r.Count:N0} | {r.StartedPerSecond:N0} | {Signed(growth)} MiB | {growth / (double)r.Count / 1024:F2} KiB | {Mib(r.RssAfterRestartBytes)} MiB | {r.RestartToHealthySeconds:F1} s | {r.FirstRaiseMs:F0} ms | {r.CompletedPerSecond:N0} | {Mib(r.RssIdleBytes)} MiB | yes |");
        }

        s.AppendLine();
        s.AppendLine("| backend | when | " + string.Join(" | ", Queries.Select(q => $"{q.Label} (`{q.Path}`)")) + " |");
        s.AppendLine("|---|---|" + string.Concat(Queries.Select(_ => "---:|")));
        foreach (var r in rows.Where(r => r.Failure is null))
        {
            s.AppendLine($"| {r.Backend} | {r.Count:N0} waiting | " + string.Join(" | ", r.QueriesWaitingMs.Select(ms => $"{ms:F0} ms")) + " |");
            s.AppendLine($"| {r.Backend} | all completed | " + string.Join(" | ", r.QueriesCompletedMs.Select(ms => $"{ms:F0} ms")) + " |");
        }

        s.AppendLine();
        s.AppendLine("RSS growth = the scheduler's RSS holding the instances minus its RSS before they started (after a warm-up). The restart");
        s.AppendLine("follows a kill -9 on the same store; the first raise is timed from the call to the completion seen by the client,");
        s.AppendLine("once the SDK worker has reconnected. \"All completed correctly\": every instance completed (status counts) and a random");
        s.AppendLine("sample of 200 returned the payload of its own event. Queries: the JSON API's time to the whole answer, best of three.");
        return s.ToString();
    }

    static string Mib(long bytes) => (bytes / 1048576.0).ToString("N0", CultureInfo.InvariantCulture);

    static string Signed(long bytes) => (bytes >= 0 ? "+" : "") + Mib(bytes);

    static void Log(string message) => Console.WriteLine($"   [{DateTime.Now:HH:mm:ss}] {message}");
}
