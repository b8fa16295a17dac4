using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Entities;
using Microsoft.DurableTask.Worker;

namespace DurableTask.Benchmarks.Load;

/// <summary>
/// The load role: official SDK workers and a client in one process against a backend: a worker per address (scheduler
/// replica), the client on the first. Runs the warm-up and one timed scenario, measuring the backend processes (by
/// pid) around the timed part only.
/// </summary>
static class LoadRunner
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        if (options.Addresses.Count == 0 || options.Scenario is null)
        {
            Console.Error.WriteLine("load needs --address and --scenario");
            return 2;
        }

        var scenario = options.Scenario;
        var result = new ScenarioResult { Scenario = scenario };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(options.TimeoutSeconds));

        // Separate channels: the client's thousands of completion long-polls must not queue the worker's calls.
        var workerChannels = options.Addresses.Select(CreateChannel).ToArray();
        using var clientChannel = CreateChannel(options.Addresses[0]);
        var entities = scenario == "entity-signals";

        var builder = Host.CreateApplicationBuilder([]);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // One worker per scheduler replica, each as a single backend's: workers on replicas other than the task hub's
        // owner are served through forwarding, as behind a load balancer.
        for (var i = 0; i < workerChannels.Length; i++)
        {
            var workerChannel = workerChannels[i];
            builder.Services.AddDurableTaskWorker($"worker-{i}", b =>
            {
                b.AddTasks(Workload.Register);
                b.UseGrpc(workerChannel);
                b.Configure(o =>
                {
                    // The SDK default is 100 x cores; raise it so the worker never limits what the backend may hand out.
                    o.Concurrency.MaximumConcurrentOrchestrationWorkItems = 1000;
                    o.Concurrency.MaximumConcurrentActivityWorkItems = 1000;
                    o.Concurrency.MaximumConcurrentEntityWorkItems = 1000;
                    o.EnableEntitySupport = entities;
                });
            });
        }

        builder.Services.AddDurableTaskClient(b =>
        {
            b.UseGrpc(clientChannel);
            b.Configure(o => o.EnableEntitySupport = entities);
        });

        using var host = builder.Build();
        await host.StartAsync(timeout.Token);
        var client = host.Services.GetRequiredService<DurableTaskClient>();
        var probe = options.BackendPids.Count > 0 ? new ProcessProbe(options.BackendPids) : null;
        var heapProbe = options.BackendPids.Count > 0 ? new HeapProbe(options.BackendPids) : null;
        var redisProbe = options.RedisPid is int redisPid ? new ProcessProbe([redisPid]) : null;

        try
        {
            if (options.Warmup > 0)
            {
                Log($"warm-up: {options.Warmup} hello-cities orchestrations");
                var warm = await RunHelloCitiesAsync(client, "warmup", options.Warmup, HelloInput(options), timeout.Token);
                if (warm.Failed)
                    throw new BenchmarkException($"warm-up failed: {warm.Message}");
            }

            // The other scenarios also run once untimed at half size: code paths that only long histories or
            // large batches reach get compiled and tiered up before the timed run, as they would be in a
            // long-running service.
            if (options.Warmup > 0 && scenario != "hello-cities")
            {
                Log($"warm-up: {scenario} at half size");
                var warm = await RunScenarioAsync(scenario, half: true);
                if (warm.Failed)
                    throw new BenchmarkException($"warm-up failed: {warm.Message}");
            }

            // Let both processes settle (background JIT tiering, GC after the warm-up) so that work is not
            // counted in the timed run.
            GC.Collect();
            await Task.Delay(TimeSpan.FromSeconds(1), timeout.Token);
            var timedStart = DateTimeOffset.UtcNow.AddMilliseconds(-200);
            Workload.ResetCounters();
            var backendBefore = probe?.Read();
            var redisBefore = redisProbe?.Read();
            var loadCpuBefore = Process.GetCurrentProcess().TotalProcessorTime;

            Log($"timed run: {scenario}");
            var measured = await RunScenarioAsync(scenario, half: false);

            var backendAfter = probe?.Read();
            var redisAfter = redisProbe?.Read();
            result = measured;
            result.Scenario = scenario;
            result.OrchestratorWorkItems = Interlocked.Read(ref Workload.OrchestratorWorkItems);
            result.ActivityWorkItems = Interlocked.Read(ref Workload.ActivityWorkItems);
            if (result.ElapsedSeconds > 0)
                result.WorkItemsPerSecond = (result.OrchestratorWorkItems + result.ActivityWorkItems) / result.ElapsedSeconds;
            result.LoadCpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - loadCpuBefore).TotalSeconds;

            if (backendBefore is { } before && backendAfter is { } after)
            {
                result.BackendCpuSeconds = (after.Cpu - before.Cpu).TotalSeconds;
                result.BackendRssBeforeBytes = before.RssBytes;
                result.BackendRssAfterBytes = after.RssBytes;
                result.BackendPeakRssBytes = after.PeakRssBytes;
                if (result.Count > 0)
                {
                    result.BackendCpuMsPerUnit = result.BackendCpuSeconds * 1000 / result.Count;
                    result.BackendRssBytesPerUnit = (after.RssBytes - before.RssBytes) / (double)result.Count;
                    if (heapProbe is not null && !result.Failed && scenario != "unary-calls")
                        result.BackendHeapBytesPerUnit = await HeldPerUnitAsync(client, heapProbe, timedStart, result.Count, timeout.Token);
                }
            }

            if (redisBefore is { } redisStart && redisAfter is { } redisEnd)
            {
                result.RedisCpuSeconds = (redisEnd.Cpu - redisStart.Cpu).TotalSeconds;
                if (result.Count > 0)
                    result.RedisCpuMsPerUnit = result.RedisCpuSeconds * 1000 / result.Count;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            result.Failed = true;
            result.Message = $"timed out after {options.TimeoutSeconds} s";
        }
        catch (BenchmarkException e)
        {
            result.Failed = true;
            result.Message = e.Message;
        }
        catch (RpcException e)
        {
            result.Failed = true;
            result.Message = $"gRPC {e.StatusCode}: {e.Status.Detail}";
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result.Failed = true;
            result.Message = $"{e.GetType().Name}: {e.Message}";
        }

        Task<ScenarioResult> RunScenarioAsync(string name, bool half)
        {
            int Size(int n) => half ? Math.Max(1, n / 2) : n;
            return name switch
            {
                "hello-cities" => RunHelloCitiesAsync(client, "hello", Size(options.Orchestrations), HelloInput(options), timeout.Token),
                "fan-out" => RunFanOutAsync(client, Size(options.FanOut), timeout.Token),
                "entity-signals" => RunEntitySignalsAsync(client, Size(options.Signals), options.Entities, timeout.Token),
                "large-history" => RunLargeHistoryAsync(client, Size(options.Steps), half ? null : probe, timeout.Token),
                "unary-calls" => RunUnaryCallsAsync(workerChannels[0], Size(options.Calls), timeout.Token),
                _ => throw new BenchmarkException($"unknown scenario {name}"),
            };
        }

        Log(result.Skipped ? $"skipped: {result.Message}"
            : result.Failed ? $"FAILED: {result.Message}"
            : $"{result.Count} x {result.Unit} in {result.ElapsedSeconds:F2} s = {result.Throughput:F1}/s");

        var json = result.ToJson();
        if (options.OutPath is not null)
            await File.WriteAllTextAsync(options.OutPath, json, CancellationToken.None);
        else
            Console.WriteLine(json);

        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await host.StopAsync(stopping.Token);
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var channel in workerChannels)
            channel.Dispose();
        return result.Failed ? 1 : 0;
    }

    static GrpcChannel CreateChannel(string address) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        // Grpc.Net.Client's defaults except the 4 MB receive limit, which a 10,000-activity history can approach.
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        },
        MaxReceiveMessageSize = 64 * 1024 * 1024,
    });

    /// <summary>
    /// What the instances of the timed run keep in the backend's managed heap, per unit: the live heap after a full
    /// collection, minus the same after purging those instances, divided by the units. Pools and caches that grew
    /// during the run stay on both sides, so only the instances themselves are counted (payloads included).
    /// </summary>
    static async Task<double?> HeldPerUnitAsync(DurableTaskClient client, HeapProbe heap, DateTimeOffset timedStart, int units, CancellationToken ct)
    {
        var held = await heap.ReadSettledAsync(TimeSpan.FromSeconds(6), ct);
        if (held is null) return null;
        var filter = new PurgeInstancesFilter(CreatedFrom: timedStart, Statuses: [OrchestrationRuntimeStatus.Completed]);
        var purged = 0;
        while (true)
        {
            var result = await client.PurgeAllInstancesAsync(filter, ct);
            purged += result.PurgedInstanceCount;
            if (result.PurgedInstanceCount == 0 || result.IsComplete != false) break;
        }

        if (purged == 0) return null;
        var without = await heap.ReadSettledAsync(TimeSpan.Zero, ct);
        return without is null ? null : (held.Value - without.Value) / (double)units;
    }

    /// <summary>The input of every hello-cities orchestration: a string that serializes to about <c>--input-bytes</c> bytes of JSON.</summary>
    static string? HelloInput(BenchOptions options) => options.InputBytes > 0 ? new string('x', Math.Max(0, options.InputBytes - 2)) : null;

    /// <summary>
    /// Starts <paramref name="count"/> orchestrations at once; each one's completion is awaited with the SDK's
    /// <c>WaitForInstanceCompletionAsync</c> (a server-side long-poll) as soon as its start call returns.
    /// </summary>

    static async Task<ScenarioResult> RunHelloCitiesAsync(DurableTaskClient client, string prefix, int count, string? input, CancellationToken ct)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var latencies = new double[count];
        var failures = 0;
        string? firstFailure = null;
        var completed = 0;

        var started = Stopwatch.GetTimestamp();
        var tasks = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var index = i;
            tasks[i] = Task.Run(async () =>
            {
                var id = $"{prefix}-{run}-{index}";
                var t0 = Stopwatch.GetTimestamp();
                await client.ScheduleNewOrchestrationInstanceAsync(
                    Workload.HelloCities, input, new StartOrchestrationOptions(id), ct);
                var metadata = await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, ct);
                latencies[index] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                Interlocked.Increment(ref completed);

                var problem = Check(metadata);
                if (problem is not null)
                {
                    Interlocked.Increment(ref failures);
                    Interlocked.CompareExchange(ref firstFailure, $"{id}: {problem}", null);
                }
            }, ct);
        }

        await WithProgress(Task.WhenAll(tasks), () => $"{Volatile.Read(ref completed)}/{count} orchestrations completed ({WorkItems()})");
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;

        Array.Sort(latencies);
        return new ScenarioResult
        {
            Unit = "orchestration",
            Count = count,
            ElapsedSeconds = elapsed,
            Throughput = count / elapsed,
            LatencyP50Ms = Percentile(latencies, 0.50),
            LatencyP99Ms = Percentile(latencies, 0.99),
            Failed = failures > 0,
            Message = failures > 0 ? $"{failures} orchestrations did not complete as expected, e.g. {firstFailure}" : null,
        };

        static string? Check(OrchestrationMetadata? metadata)
        {
            if (metadata is null)
                return "not found";
            if (metadata.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
                return $"status {metadata.RuntimeStatus} {metadata.FailureDetails?.ErrorMessage}";
            var output = metadata.ReadOutputAs<List<string>>();
            var expected = Workload.Cities.Select(c => $"Hello, {c}!");
            return output is not null && output.SequenceEqual(expected) ? null : $"unexpected output {metadata.SerializedOutput}";
        }
    }

    /// <summary>Concurrent callers in the unary-calls scenario.</summary>
    public const int UnaryCallers = 64;

    /// <summary>
    /// The floor under every scenario: the protocol's cheapest call (<c>Hello</c>, empty in and out), made
    /// <paramref name="calls"/> times by <see cref="UnaryCallers"/> callers on the worker's channel. A hello-cities
    /// orchestration costs a backend 13 unary calls (a start, a completion wait, 6 orchestrator and 5 activity
    /// completions) and 11 messages on the work-item stream, so this bounds what any backend on the same HTTP/2
    /// server can reach per orchestration.
    /// </summary>
    static async Task<ScenarioResult> RunUnaryCallsAsync(GrpcChannel channel, int calls, CancellationToken ct)
    {
        var sidecar = new Microsoft.DurableTask.Protobuf.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        var empty = new Google.Protobuf.WellKnownTypes.Empty();
        var left = calls;
        var started = Stopwatch.GetTimestamp();
        var callers = Enumerable.Range(0, UnaryCallers).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Decrement(ref left) >= 0)
                await sidecar.HelloAsync(empty, cancellationToken: ct);
        }, ct));
        await Task.WhenAll(callers);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return new ScenarioResult { Unit = "call", Count = calls, ElapsedSeconds = elapsed, Throughput = calls / elapsed };
    }

    static async Task<ScenarioResult> RunFanOutAsync(DurableTaskClient client, int activities, CancellationToken ct)
    {
        var id = $"fanout-{Guid.NewGuid():N}";
        var started = Stopwatch.GetTimestamp();
        await client.ScheduleNewOrchestrationInstanceAsync(Workload.FanOut, activities, new StartOrchestrationOptions(id), ct);
        var metadata = await WithProgress(
            client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, ct),
            () => $"{Interlocked.Read(ref Workload.ActivityWorkItems)}/{activities} activities run ({WorkItems()})");
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;

        var expected = (long)activities * (activities - 1) / 2;
        var problem = metadata.RuntimeStatus != OrchestrationRuntimeStatus.Completed
            ? $"status {metadata.RuntimeStatus} {metadata.FailureDetails?.ErrorMessage}"
            : metadata.ReadOutputAs<long>() != expected ? $"sum {metadata.SerializedOutput}, expected {expected}" : null;

        return new ScenarioResult
        {
            Unit = "activity",
            Count = activities,
            ElapsedSeconds = elapsed,
            Throughput = activities / elapsed,
            Failed = problem is not null,
            Message = problem,
        };
    }

    static async Task<ScenarioResult> RunLargeHistoryAsync(DurableTaskClient client, int steps, ProcessProbe? probe, CancellationToken ct)
    {
        var id = $"sequence-{Guid.NewGuid():N}";
        Workload.StepStarted = new long[steps];
        var window = Math.Min(100, (steps - 1) / 2);

        // The backend's CPU time at the window edges tells whether the backend's own cost per step grows.
        var cpuAt = new System.Collections.Concurrent.ConcurrentDictionary<int, TimeSpan>();
        int[] edges = [0, window, steps - 1 - window, steps - 1];
        if (probe is not null && window > 0)
            Workload.StepStarting = index => { if (edges.Contains(index)) cpuAt[index] = probe.Read().Cpu; };

        var started = Stopwatch.GetTimestamp();
        await client.ScheduleNewOrchestrationInstanceAsync(Workload.Sequence, steps, new StartOrchestrationOptions(id), ct);
        var metadata = await WithProgress(
            client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, ct),
            () => $"{Interlocked.Read(ref Workload.ActivityWorkItems)}/{steps} steps run ({WorkItems()})");
        var finished = Stopwatch.GetTimestamp();
        var elapsed = Stopwatch.GetElapsedTime(started, finished).TotalSeconds;

        var problem = metadata.RuntimeStatus != OrchestrationRuntimeStatus.Completed
            ? $"status {metadata.RuntimeStatus} {metadata.FailureDetails?.ErrorMessage}"
            : metadata.ReadOutputAs<int>() != steps ? $"{metadata.SerializedOutput} steps confirmed, expected {steps}" : null;

        // Step i takes from the start of activity i-1 to the start of activity i: one orchestrator episode (replaying
        // the history so far) plus one activity dispatch. Compare the first and the last window of steps.
        Workload.StepStarting = null;
        var marks = Workload.StepStarted;
        double? first = null, last = null, firstCpu = null, lastCpu = null;
        if (problem is null && window > 0 && marks.All(m => m != 0))
        {
            first = Stopwatch.GetElapsedTime(marks[0], marks[window]).TotalMilliseconds / window;
            last = Stopwatch.GetElapsedTime(marks[steps - 1 - window], marks[steps - 1]).TotalMilliseconds / window;
            if (edges.All(cpuAt.ContainsKey))
            {
                firstCpu = (cpuAt[window] - cpuAt[0]).TotalMilliseconds / window;
                lastCpu = (cpuAt[steps - 1] - cpuAt[steps - 1 - window]).TotalMilliseconds / window;
            }
        }

        return new ScenarioResult
        {
            Unit = "step",
            Count = steps,
            ElapsedSeconds = elapsed,
            Throughput = steps / elapsed,
            StepWindow = window,
            FirstStepsMs = first,
            LastStepsMs = last,
            FirstStepsBackendCpuMs = firstCpu,
            LastStepsBackendCpuMs = lastCpu,
            Failed = problem is not null,
            Message = problem,
        };
    }

    static async Task<ScenarioResult> RunEntitySignalsAsync(DurableTaskClient client, int signals, int entityCount, CancellationToken ct)
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var ids = Enumerable.Range(0, entityCount).Select(i => new EntityInstanceId(Workload.CounterEntity, $"{run}-{i}")).ToArray();

        // Probe first: a backend without entity support answers Unimplemented and the scenario is skipped.
        try
        {
            await client.Entities.GetEntityAsync(ids[0], includeState: false, ct);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            return Skip($"backend answered {e.StatusCode} to an entity call{Detail(e)}");
        }

        var reached = Workload.WhenEntityOperations(signals);
        var started = Stopwatch.GetTimestamp();
        var sent = 0;
        using var gate = new SemaphoreSlim(500);
        var sends = new Task[signals];
        try
        {
            for (var i = 0; i < signals; i++)
            {
                await gate.WaitAsync(ct);
                var id = ids[i % entityCount];
                sends[i] = SendAsync(id);
            }

            await Task.WhenAll(sends);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            return Skip($"backend answered {e.StatusCode} to SignalEntity{Detail(e)}");
        }

        var finishedAt = await WithProgress(reached, () => $"{Interlocked.Read(ref Workload.EntityOperations)}/{signals} operations run ({Volatile.Read(ref sent)} sent)");
        var elapsed = Stopwatch.GetElapsedTime(started, finishedAt).TotalSeconds;

        // The worker counted the operations when it ran them; the results of the last batches may still be on their way
        // to the backend. Its stored states must then add up to the same total.
        long total = 0;
        var settle = Stopwatch.StartNew();
        do
        {
            total = 0;
            foreach (var id in ids)
            {
                var entity = await client.Entities.GetEntityAsync<int>(id, includeState: true, ct);
                total += entity?.State ?? 0;
            }

            if (total == signals) break;
            await Task.Delay(100, ct);
        }
        while (settle.Elapsed < TimeSpan.FromSeconds(10));

        return new ScenarioResult
        {
            Unit = "operation",
            Count = signals,
            ElapsedSeconds = elapsed,
            Throughput = signals / elapsed,
            Failed = total != signals,
            Message = total != signals ? $"entity states add up to {total}, expected {signals}" : null,
        };

        async Task SendAsync(EntityInstanceId id)
        {
            try
            {
                await client.Entities.SignalEntityAsync(id, "add", 1, cancellation: ct);
                Interlocked.Increment(ref sent);
            }
            finally
            {
                gate.Release();
            }
        }

        static string Detail(RpcException e) => string.IsNullOrEmpty(e.Status.Detail) ? "" : $" ({e.Status.Detail})";

        static ScenarioResult Skip(string message) => new() { Unit = "operation", Skipped = true, Message = message };
    }

    static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    static async Task<T> WithProgress<T>(Task<T> work, Func<string> progress)
    {
        await WithProgress((Task)work, progress);
        return await work;
    }

    /// <summary>Prints progress every 10 s while waiting, and gives up once nothing has moved for a minute.</summary>
    static async Task WithProgress(Task work, Func<string> progress)
    {
        var last = progress();
        var lastChange = Stopwatch.StartNew();
        while (await Task.WhenAny(work, Task.Delay(TimeSpan.FromSeconds(10))) != work)
        {
            var now = progress();
            Log(now);
            if (now != last)
            {
                last = now;
                lastChange.Restart();
            }
            else if (lastChange.Elapsed > StallLimit)
            {
                throw new BenchmarkException($"no progress for {StallLimit.TotalSeconds:F0} s: {now}");
            }
        }

        await work;
    }

    static string WorkItems() =>
        $"{Interlocked.Read(ref Workload.OrchestratorWorkItems)} orchestrator and {Interlocked.Read(ref Workload.ActivityWorkItems)} activity work items";

    static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(60);

    static void Log(string message) => Console.WriteLine($"[load {DateTime.Now:HH:mm:ss}] {message}");
}

sealed class BenchmarkException(string message) : Exception(message);
