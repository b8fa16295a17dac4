using System.Collections.Concurrent;
using System.Diagnostics;
using DurableTask.Scheduler.Storage.Sqlite;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CrashCollection
{
    public const string Name = "Scheduler crashes";
}

/// <summary>
/// The real scheduler in its own process, killed with SIGKILL while the .NET SDK runs work against it, and started
/// again on the same ports and data: every orchestration must complete with the right output, timers must fire and
/// never early, and a Redis outage must be reported and survived.
/// </summary>
[Collection(CrashCollection.Name)]
public sealed class CrashTests(ITestOutputHelper output)
{
    internal const int Sequences = 2000;
    static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];
    static readonly string ExpectedOutput = string.Join(" ", Cities.Select(c => $"Hello, {c}!"));

    public sealed record Visit(string InstanceId, int Step, string City);

    [Fact]
    public async Task Sqlite_TwoKillsDuringTwoThousandSequences_EverySequenceCompletes()
    {
        using var data = new TempFolder("crash-sqlite");
        Directory.CreateDirectory(data.Path);
        await RunSequencesWithKillsAsync(data.Path, "--Scheduler:Store=sqlite", $"--Scheduler:DataPath={data.Path}");
    }

    [Fact]
    public async Task Redis_TwoKillsDuringTwoThousandSequences_EverySequenceCompletes()
    {
        await using var redis = await RedisServer.StartAsync();
        using var work = new TempFolder("crash-redis");
        Directory.CreateDirectory(work.Path);
        await RunSequencesWithKillsAsync(work.Path, "--Scheduler:Store=redis", $"--ConnectionStrings:store={redis.ConnectionString}");
    }

    [Fact]
    public async Task Sqlite_RestartWithPendingTimers_TimersFireAndNeverEarly()
    {
        using var data = new TempFolder("timer-sqlite");
        Directory.CreateDirectory(data.Path);
        await RunTimersAcrossRestartAsync(data.Path, "--Scheduler:Store=sqlite", $"--Scheduler:DataPath={data.Path}");

        // The histories the scheduler committed: when it fired each timer (the worker may have run it later).
        await using var store = new SqliteStoreProvider(data.Path, new SqliteStoreOptions()).Open("default");
        foreach (var instance in (await store.LoadAsync(CancellationToken.None)).Instances)
        {
            var fired = instance.History.SelectMany(b => b.Events).Select(e => P.HistoryEvent.Parser.ParseFrom(e))
                .Single(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TimerFired);
            var due = fired.TimerFired.FireAt.ToDateTime();
            var at = fired.Timestamp.ToDateTime();
            output.WriteLine($"scheduler fired the timer of '{instance.Record.InstanceId}' {(at - due).TotalMilliseconds:F0} ms after its due time");
            Assert.True(at >= due, $"the timer of '{instance.Record.InstanceId}' fired {(due - at).TotalMilliseconds:F0} ms early");
        }
    }

    [Fact]
    public async Task Sqlite_DamagedDatabase_StopsTheStartWithItsPath()
    {
        using var data = new TempFolder("damaged");
        Directory.CreateDirectory(data.Path);
        string file = Path.Combine(data.Path, "default.db");
        var garbage = new byte[16384];
        new Random(3).NextBytes(garbage);
        await File.WriteAllBytesAsync(file, garbage);

        await using var scheduler = new SchedulerProcess(output, data.Path, "--Scheduler:Store=sqlite", $"--Scheduler:DataPath={data.Path}");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => scheduler.StartAsync());
        Assert.Contains("exited", error.Message);
        Assert.Contains(file, error.Message);
        Assert.Contains("StoreCorruptedException", error.Message);
        Assert.Equal(garbage, await File.ReadAllBytesAsync(file));
    }

    [Fact]
    public async Task Redis_RestartWithPendingTimers_TimersFireAndNeverEarly()
    {
        await using var redis = await RedisServer.StartAsync();
        using var work = new TempFolder("timer-redis");
        Directory.CreateDirectory(work.Path);
        await RunTimersAcrossRestartAsync(work.Path, "--Scheduler:Store=redis", $"--ConnectionStrings:store={redis.ConnectionString}");
    }

    [Fact]
    public async Task RedisOutageUnderLoad_IsReportedUnhealthy_CallsAnswerUnavailable_AndNothingAcknowledgedIsLost()
    {
        await using var redis = await RedisServer.StartAsync();
        using var work = new TempFolder("outage");
        Directory.CreateDirectory(work.Path);
        await using var scheduler = new SchedulerProcess(output, work.Path, "--Scheduler:Store=redis", $"--ConnectionStrings:store={redis.ConnectionString}");
        await scheduler.StartAsync();
        var runs = new ConcurrentDictionary<string, int>();
        await using var sdk = await SdkHost.StartAsync(scheduler.Address, r => AddSequence(r, runs));
        var client = sdk.Client;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };

        var before = Enumerable.Range(0, 100).Select(i => $"before-{i:D3}").ToList();
        foreach (string id in before) await client.ScheduleNewOrchestrationInstanceAsync("CitySequence", new StartOrchestrationOptions(id));
        await WaitAllCompletedAsync(client, before.Count, TimeSpan.FromSeconds(60), "before-");

        // A steady stream of new sequences keeps commits going through the outage; only acknowledged starts count.
        var acknowledged = new ConcurrentBag<string>();
        using var stopLoad = new CancellationTokenSource();
        var load = StartLoadAsync(client, acknowledged, TimeSpan.FromMilliseconds(20), stopLoad.Token);
        await Task.Delay(1000);

        // Redis goes away (killed; it keeps its append-only file).
        await redis.KillAsync();
        var sw = Stopwatch.StartNew();
        while (await scheduler.IsHealthyAsync(http))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), "/healthz still answers 200 15 s after Redis went away");
            await Task.Delay(50);
        }

        output.WriteLine($"/healthz unhealthy {sw.ElapsedMilliseconds} ms after Redis was killed");
        sw.Restart();
        var refused = await Assert.ThrowsAnyAsync<Exception>(() =>
            client.ScheduleNewOrchestrationInstanceAsync("CitySequence", new StartOrchestrationOptions("during-outage")));
        output.WriteLine($"a start during the outage failed after {sw.ElapsedMilliseconds} ms: {refused.GetType().Name}: {refused.Message}");
        Assert.Equal(StatusCode.Unavailable, Assert.IsType<RpcException>(refused).StatusCode);

        await Task.Delay(3000);
        await redis.StartAsync();
        sw.Restart();
        while (!await scheduler.IsHealthyAsync(http))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "/healthz did not answer 200 within 30 s of Redis coming back");
            await Task.Delay(50);
        }

        output.WriteLine($"/healthz healthy {sw.ElapsedMilliseconds} ms after Redis came back");
        await Task.Delay(500);
        stopLoad.Cancel();
        await load;

        // Everything acknowledged is there and completes, and new work runs.
        var after = Enumerable.Range(0, 100).Select(i => $"after-{i:D3}").ToList();
        foreach (string id in after) await ScheduleAsync(client, id, TimeSpan.FromSeconds(30));
        var expected = before.Concat(acknowledged).Concat(after).ToList();
        output.WriteLine($"{acknowledged.Count} starts acknowledged by the load loop around the outage");
        await WaitAllCompletedAsync(client, expected.Count, TimeSpan.FromSeconds(90), null);
        foreach (string id in expected)
        {
            var state = await client.GetInstanceAsync(id, getInputsAndOutputs: true);
            Assert.True(state is not null, $"acknowledged instance {id} is missing");
            Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
            Assert.Equal(ExpectedOutput, state.ReadOutputAs<string>());
        }

        Assert.Null(await client.GetInstanceAsync("during-outage"));
        int repeated = runs.Count(r => r.Value > 1);
        output.WriteLine($"{runs.Count:N0} activities, {repeated} ran more than once");
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task CompletionSeenByAClient_SurvivesAKillRightAfter(string store)
    {
        using var work = new TempFolder("seen-" + store);
        Directory.CreateDirectory(work.Path);
        await using var redis = store == "redis" ? await RedisServer.StartAsync() : null;
        await using var scheduler = new SchedulerProcess(output, work.Path, SchedulerProcess.StoreSettings(redis, work.Path));
        await scheduler.StartAsync();

        // Many sequences complete while the scheduler is killed just after the first few completions were seen.
        var seen = new ConcurrentBag<string>();
        var runs = new ConcurrentDictionary<string, int>();
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, r => AddSequence(r, runs)))
        {
            // Starts keep coming, so completions are streaming in when the kill lands.
            var waits = Enumerable.Range(0, 2000).Select(async i =>
            {
                string id = $"seen-{i:D4}";
                try
                {
                    await Task.Delay(i * 2);
                    await sdk.Client.ScheduleNewOrchestrationInstanceAsync("CitySequence", new StartOrchestrationOptions(id));
                    var state = await sdk.Client.WaitForInstanceCompletionAsync(id);
                    if (state.RuntimeStatus == OrchestrationRuntimeStatus.Completed) seen.Add(id);
                }
                catch (Exception ex) when (IsTransient(ex))
                {
                }
            }).ToList();
            var sw = Stopwatch.StartNew();
            while (seen.Count < 200 && sw.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(1);
            await scheduler.KillAsync();
            await Task.WhenAll(waits);
        }

        // Restarted without workers, so nothing runs again: every completion a client saw must be in the store.
        output.WriteLine($"{seen.Count} completions seen before the kill");
        Assert.NotEmpty(seen);
        await scheduler.StartAsync();
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(scheduler.Address);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        foreach (string id in seen)
        {
            var state = await client.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id });
            Assert.True(state.Exists, $"{id} is missing after the restart");
            Assert.True(state.OrchestrationState.OrchestrationStatus == P.OrchestrationStatus.Completed,
                $"{id} was seen completed before the kill but is {state.OrchestrationState.OrchestrationStatus} after the restart");
        }
    }

    async Task RunSequencesWithKillsAsync(string workingDirectory, params string[] settings)
    {
        var total = Stopwatch.StartNew();
        await using var scheduler = new SchedulerProcess(output, workingDirectory, settings);
        await scheduler.StartAsync();
        output.WriteLine($"scheduler started in {total.ElapsedMilliseconds} ms");

        var runs = new ConcurrentDictionary<string, int>();
        await using var sdk = await SdkHost.StartAsync(scheduler.Address, r => AddSequence(r, runs));
        var client = sdk.Client;

        var ids = Enumerable.Range(0, Sequences).Select(i => $"seq-{i:D4}").ToList();
        var scheduling = Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (id, _) => await ScheduleAsync(client, id, TimeSpan.FromSeconds(120)));

        // Two kills: after about a fifth and about three fifths of the activities ran.
        foreach (int threshold in new[] { Sequences, Sequences * 3 })
        {
            var wait = Stopwatch.StartNew();
            while (Executions(runs) < threshold)
            {
                Assert.True(wait.Elapsed < TimeSpan.FromSeconds(90), $"only {Executions(runs)} activities ran in 90 s (waiting for {threshold})");
                await Task.Delay(10);
            }

            int executed = Executions(runs);
            await scheduler.KillAsync();
            var restart = Stopwatch.StartNew();
            await scheduler.StartAsync();
            output.WriteLine($"killed the scheduler after {executed:N0} activity executions at {total.Elapsed.TotalSeconds:F1} s; healthy again in {restart.ElapsedMilliseconds} ms");
        }

        await scheduling;
        output.WriteLine($"all {Sequences:N0} starts acknowledged at {total.Elapsed.TotalSeconds:F1} s");
        await WaitAllCompletedAsync(client, Sequences, TimeSpan.FromSeconds(120), "seq-");
        output.WriteLine($"all {Sequences:N0} sequences completed at {total.Elapsed.TotalSeconds:F1} s");

        await CheckOutputsAsync(client, "seq-", Sequences);
        foreach (string id in ids)
        {
            for (int step = 0; step < Cities.Length; step++)
            {
                Assert.True(runs.ContainsKey($"{id}/{step}"), $"activity {step} of {id} never ran");
            }
        }

        int repeated = runs.Count(r => r.Value > 1);
        int extra = runs.Sum(r => r.Value - 1);
        output.WriteLine($"{runs.Count:N0} activities, {Executions(runs):N0} executions: {repeated} activities ran more than once ({extra} extra executions)");
        output.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s");
    }

    async Task RunTimersAcrossRestartAsync(string workingDirectory, params string[] settings)
    {
        await using var scheduler = new SchedulerProcess(output, workingDirectory, settings);
        await scheduler.StartAsync();
        var firedAt = new ConcurrentDictionary<string, DateTime>();
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, r =>
        {
            r.AddOrchestratorFunc<DateTime, DateTime>("Sleeper", async (ctx, fireAt) =>
            {
                ctx.SetCustomStatus("waiting");
                await ctx.CreateTimer(fireAt, CancellationToken.None);
                return await ctx.CallActivityAsync<DateTime>("Woke", ctx.InstanceId);
            });
            r.AddActivityFunc<string, DateTime>("Woke", (_, id) => firedAt.GetOrAdd(id, DateTime.UtcNow));
        }))
        {
            var client = sdk.Client;
            var start = DateTime.UtcNow;

            // "early" is due while the scheduler is down; "late" after it is back.
            var due = new Dictionary<string, DateTime>
            {
                ["early"] = start.AddSeconds(3),
                ["late"] = start.AddSeconds(8),
            };
            foreach (var (id, fireAt) in due)
            {
                await client.ScheduleNewOrchestrationInstanceAsync("Sleeper", fireAt, new StartOrchestrationOptions(id));
            }

            foreach (string id in due.Keys)
            {
                await WaitForAsync(async () =>
                {
                    var s = await client.GetInstanceAsync(id, getInputsAndOutputs: true);
                    return s is { RuntimeStatus: OrchestrationRuntimeStatus.Running, SerializedCustomStatus: "\"waiting\"" } ? s : null;
                }, TimeSpan.FromSeconds(30), $"{id} to wait for its timer", () => client.GetInstanceAsync(id, getInputsAndOutputs: true));
            }

            await scheduler.KillAsync();
            var down = DateTime.UtcNow;
            await Task.Delay(TimeSpan.FromSeconds(4));
            await scheduler.StartAsync();
            output.WriteLine($"scheduler down from +{(down - start).TotalSeconds:F1} s to +{(DateTime.UtcNow - start).TotalSeconds:F1} s");

            foreach (var (id, fireAt) in due)
            {
                var state = await WaitForAsync(async () =>
                {
                    var s = await client.GetInstanceAsync(id, getInputsAndOutputs: true);
                    return s is { IsCompleted: true } ? s : null;
                }, TimeSpan.FromSeconds(30), $"{id} to complete", () => client.GetInstanceAsync(id, getInputsAndOutputs: true));
                Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
                var woke = state.ReadOutputAs<DateTime>();
                output.WriteLine($"timer '{id}' due at +{(fireAt - start).TotalSeconds:F2} s fired at +{(woke - start).TotalSeconds:F2} s ({(woke - fireAt).TotalMilliseconds:F0} ms late)");
                Assert.True(woke >= fireAt, $"timer '{id}' fired {(fireAt - woke).TotalMilliseconds:F0} ms early");
            }
        }
    }

    internal static void AddSequence(DurableTaskRegistry r, ConcurrentDictionary<string, int> runs)
    {
        r.AddOrchestratorFunc<string?, string>("CitySequence", async (ctx, _) =>
        {
            var greetings = new List<string>();
            for (int step = 0; step < Cities.Length; step++)
            {
                greetings.Add(await ctx.CallActivityAsync<string>("Visit", new Visit(ctx.InstanceId, step, Cities[step])));
            }

            return string.Join(" ", greetings);
        });
        r.AddActivityFunc<Visit, string>("Visit", (_, visit) =>
        {
            runs.AddOrUpdate($"{visit.InstanceId}/{visit.Step}", 1, (_, n) => n + 1);
            return $"Hello, {visit.City}!";
        });
    }

    static string Describe(OrchestrationMetadata? state) => state is null
        ? "missing"
        : $"{state.RuntimeStatus}, custom status {state.SerializedCustomStatus ?? "null"}, output {state.SerializedOutput ?? "null"}" +
          (state.FailureDetails is null ? "" : $", failure {state.FailureDetails.ErrorType}: {state.FailureDetails.ErrorMessage}");

    /// <summary>Starts <c>load-NNNN</c> sequences one after another until cancelled; adds the acknowledged ones to <paramref name="acknowledged"/>.</summary>
    internal static Task StartLoadAsync(DurableTaskClient client, ConcurrentBag<string> acknowledged, TimeSpan pause, CancellationToken stop) =>
        Task.Run(async () =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                string id = $"load-{i:D4}";
                try
                {
                    await client.ScheduleNewOrchestrationInstanceAsync("CitySequence", new StartOrchestrationOptions(id));
                    acknowledged.Add(id);
                }
                catch (Exception ex) when (IsTransient(ex))
                {
                }

                await Task.Delay(pause);
            }
        });

    internal static int Executions(ConcurrentDictionary<string, int> runs) => runs.Values.Sum();

    /// <summary>Starts an instance, retrying while the scheduler is down; a start whose answer was lost is found by id.</summary>
    internal static async Task ScheduleAsync(DurableTaskClient client, string id, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        bool retried = false;
        while (true)
        {
            try
            {
                if (retried && await client.GetInstanceAsync(id) is not null) return;
                await client.ScheduleNewOrchestrationInstanceAsync("CitySequence", new StartOrchestrationOptions(id));
                return;
            }
            catch (Exception ex) when (IsTransient(ex) && sw.Elapsed < timeout)
            {
                retried = true;
                await Task.Delay(200);
            }
        }
    }

    internal static bool IsTransient(Exception ex) =>
        ex is RpcException { StatusCode: StatusCode.Unavailable or StatusCode.Internal or StatusCode.Unknown or StatusCode.Cancelled or StatusCode.DeadlineExceeded }
        || ex is HttpRequestException or IOException or OperationCanceledException;

    /// <summary>Waits until <paramref name="count"/> instances with <paramref name="prefix"/> are Completed; fails at once when one failed.</summary>
    internal static async Task WaitAllCompletedAsync(DurableTaskClient client, int count, TimeSpan timeout, string? prefix)
    {
        var sw = Stopwatch.StartNew();
        int completed = 0;
        while (sw.Elapsed < timeout)
        {
            try
            {
                var failed = await CountAsync(client, prefix, [OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Terminated]);
                Assert.True(failed == 0, $"{failed} instances failed or were terminated");
                completed = await CountAsync(client, prefix, [OrchestrationRuntimeStatus.Completed]);
                if (completed >= count) return;
            }
            catch (Exception ex) when (IsTransient(ex))
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"only {completed} of {count} instances completed within {timeout.TotalSeconds} s");
    }

    static async Task<int> CountAsync(DurableTaskClient client, string? prefix, OrchestrationRuntimeStatus[] statuses)
    {
        var query = new OrchestrationQuery { Statuses = statuses, InstanceIdPrefix = prefix, PageSize = 1000, FetchInputsAndOutputs = false };
        int n = 0;
        await foreach (var _ in client.GetAllInstancesAsync(query)) n++;
        return n;
    }

    internal static async Task CheckOutputsAsync(DurableTaskClient client, string prefix, int count)
    {
        var query = new OrchestrationQuery { InstanceIdPrefix = prefix, PageSize = 1000, FetchInputsAndOutputs = true };
        int n = 0;
        await foreach (var state in client.GetAllInstancesAsync(query))
        {
            Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
            Assert.Equal(ExpectedOutput, state.ReadOutputAs<string>());
            n++;
        }

        Assert.Equal(count, n);
    }

    static async Task<T> WaitForAsync<T>(Func<Task<T?>> read, TimeSpan timeout, string what, Func<Task<OrchestrationMetadata?>>? describe = null) where T : class
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var value = await read();
                if (value is not null) return value;
            }
            catch (Exception ex) when (IsTransient(ex))
            {
            }

            if (sw.Elapsed > timeout)
            {
                string state = describe is null ? "" : "; last state: " + Describe(await describe());
                throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}{state}");
            }
            await Task.Delay(100);
        }
    }
}
