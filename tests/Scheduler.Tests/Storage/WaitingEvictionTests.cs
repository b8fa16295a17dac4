using System.Net.Http.Json;
using System.Text.Json;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// A hub with far more orchestrations waiting for external events than it may keep in memory
/// (<c>Scheduler:MaxUnfinishedInstancesInMemory</c>, here 10): the waiting ones leave memory, every read, query and count
/// still sees them, and each event, whether raised by a client or sent by another orchestration, reaches its instance
/// once and in order, before and after a kill -9. Runs the scheduler as a process on SQLite and on a real redis-server.
/// </summary>
public sealed class WaitingEvictionTests(ITestOutputHelper output)
{
    const int Cap = 10;
    const int Waiting = 120;

    static string Id(int i) => $"w-{i:D3}";

    /// <summary>The store's settings, at most <see cref="Cap"/> unfinished instances in memory, and no finished ones.</summary>
    static string[] CappedSettings(RedisServer? redis, string dataPath) =>
        [.. SchedulerProcess.StoreSettings(redis, dataPath), $"--Scheduler:MaxUnfinishedInstancesInMemory={Cap}", "--Scheduler:MaxFinishedInstancesInMemory=0"];

    static void Tasks(DurableTaskRegistry r) => r
        // Three events in a row: what arrives while the instance is read back must keep its order.
        .AddOrchestratorFunc<int, string>("Approval", async (context, n) =>
        {
            string a = await context.WaitForExternalEvent<string>("step");
            string b = await context.WaitForExternalEvent<string>("step");
            string c = await context.WaitForExternalEvent<string>("step");
            return $"{n}:{a}:{b}:{c}";
        })
        .AddOrchestratorFunc<string, string>("Sender", (context, target) =>
        {
            context.SendEvent(target, "step", "sent");
            return Task.FromResult("ok");
        })
        // Approval with a deadline: an event, or a durable timer if the event does not come in time.
        .AddOrchestratorFunc<int, string>("Deadline", async (context, seconds) =>
        {
            using var cancel = new CancellationTokenSource();
            var deadline = context.CreateTimer(context.CurrentUtcDateTime.AddSeconds(seconds), cancel.Token);
            var approval = context.WaitForExternalEvent<string>("approve");
            if (await Task.WhenAny(deadline, approval) == approval)
            {
                cancel.Cancel();
                return "approved:" + approval.Result;
            }

            return "expired";
        })
        .AddOrchestratorFunc<int, string>("Parent", async (context, n) => await context.CallSubOrchestratorAsync<string>(
            "Approval", n, new SubOrchestrationOptions { InstanceId = $"child-{n}" }))
        .AddOrchestratorFunc<int, string>("Hello", (_, n) => Task.FromResult($"hello {n}"));

    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task WaitingInstancesBeyondTheCap_LeaveMemory_AndEveryEventReachesThemOnce(string store)
    {
        await using var rig = await Rig.StartAsync(output, store, "waiting", CappedSettings);
        var (scheduler, http) = (rig.Scheduler, rig.Http);

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            var client = sdk.Client;
            for (int i = 0; i < Waiting; i++) await client.ScheduleNewOrchestrationInstanceAsync("Approval", i, new StartOrchestrationOptions(Id(i)));
            await client.ScheduleNewOrchestrationInstanceAsync("Parent", 1, new StartOrchestrationOptions("parent-1"));
            for (int i = 0; i < Waiting; i++) await client.WaitForInstanceStartAsync(Id(i));
            await Waits.UntilAsync(async () => (await client.GetInstanceAsync("child-1"))?.RuntimeStatus, s => s == OrchestrationRuntimeStatus.Running,
                "the sub-orchestration to start");

            // Only the cap's worth stays in memory (the parent, waiting for its child, may leave too); the hub counts all.
            var hub = await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap + 1, "the hub to move waiting instances out of memory");
            Assert.Equal(Waiting + 2, hub.Instances);

            await AssertEverythingVisibleAsync(client, http, OrchestrationRuntimeStatus.Running);

            // The first event: raised by a client, or (for w-000) sent by another orchestration.
            await client.ScheduleNewOrchestrationInstanceAsync("Sender", Id(0), new StartOrchestrationOptions("sender"));
            await client.CompletionAsync("sender");
            await Parallel.ForAsync(1, Waiting, new ParallelOptions { MaxDegreeOfParallelism = 16 },
                async (i, _) => await client.RaiseEventAsync(Id(i), "step", $"a{i}"));

            // A wait for the start of an instance that is only in the store answers at once.
            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap + 1, "the hub to move waiting instances out of memory again");
            var startedAgain = await client.WaitForInstanceStartAsync(Id(Waiting - 1), new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
            Assert.Equal(OrchestrationRuntimeStatus.Running, startedAgain.RuntimeStatus);

            // Terminating the parent recursively reaches its child, which is only in the store.
            await client.TerminateInstanceAsync("parent-1", new TerminateInstanceOptions { Recursive = true });
            Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await client.CompletionAsync("parent-1")).RuntimeStatus);
            Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await client.CompletionAsync("child-1")).RuntimeStatus);
        }

        // After a crash, nothing acknowledged is lost: each instance has its first event and waits for the next.
        // The store keeps which instances left memory waiting for a client: the start leaves them there.
        await rig.KillAndRestartAsync(maxLoaded: Cap + 2);

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            var client = sdk.Client;
            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap + 2, "the restarted hub to move waiting instances out of memory");
            await AssertEverythingVisibleAsync(client, http, OrchestrationRuntimeStatus.Running);

            // Two more events each, one after the other: they arrive in order, whether the instance is in memory or not.
            await Parallel.ForAsync(0, Waiting, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            {
                await client.RaiseEventAsync(Id(i), "step", $"b{i}");
                await client.RaiseEventAsync(Id(i), "step", $"c{i}");
            });

            for (int i = 0; i < Waiting; i++)
            {
                var done = await client.CompletionAsync(Id(i));
                Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
                Assert.Equal($"{i}:{(i == 0 ? "sent" : $"a{i}")}:b{i}:c{i}", done.ReadOutputAs<string>());
            }

            // Each event is in the history once.
            foreach (int i in new[] { 0, 1, Waiting / 2, Waiting - 1 })
            {
                var history = await HubProbe.HistoryAsync(scheduler, Id(i));
                Assert.Equal(3, history.Count(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.EventRaised));
                Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted);
            }

            // Counts are reused for a second: the one taken before the events may still answer for a moment.
            var counts = await Waits.UntilAsync(() => http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?prefix=w-"),
                c => c.GetProperty("counts").GetProperty("Completed").GetInt32() == Waiting, "the counts to show every instance completed");
            Assert.Equal(Waiting, counts.GetProperty("total").GetInt32());
        }
    }

    /// <summary>
    /// Instances waiting for a timer (and an event) leave memory too: each timer fires once, never early, whether it comes
    /// due while its instance is out of memory, or while the scheduler is down (then at once after the restart, which
    /// does not read the instance until then); an event still wins over a timer that is far off.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task TimersOfInstancesOutOfMemory_FireOnce_NeverEarly_AcrossAKill(string store)
    {
        const int Each = 20;
        await using var rig = await Rig.StartAsync(output, store, "waiting-timers", CappedSettings);
        var (scheduler, http) = (rig.Scheduler, rig.Http);

        // d-: due in 8 s, while the scheduler runs; k-: due in 25 s, after a kill; h-: due in an hour, approved instead.
        var groups = new[] { ("d", 8), ("k", 25), ("h", 3600) };
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            foreach (var (prefix, seconds) in groups)
            {
                for (int i = 0; i < Each; i++) await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Deadline", seconds, new StartOrchestrationOptions($"{prefix}-{i:D2}"));
            }

            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.Instances == 3 * Each && h.InMemory <= Cap, "the hub to move waiting instances out of memory");
            for (int i = 0; i < Each; i++)
            {
                var done = await sdk.Client.CompletionAsync($"d-{i:D2}");
                Assert.Equal("expired", done.ReadOutputAs<string>());
            }
        }

        await rig.KillAndRestartAsync(maxLoaded: Cap);

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            for (int i = 0; i < Each; i++) await sdk.Client.RaiseEventAsync($"h-{i:D2}", "approve", $"ok{i}");
            for (int i = 0; i < Each; i++)
            {
                Assert.Equal($"approved:ok{i}", (await sdk.Client.CompletionAsync($"h-{i:D2}")).ReadOutputAs<string>());
                Assert.Equal("expired", (await sdk.Client.CompletionAsync($"k-{i:D2}")).ReadOutputAs<string>());
            }
        }

        foreach (var id in new[] { "d-00", $"d-{Each - 1}", "k-00", $"k-{Each - 1}" }) await AssertTimerFiredOnceOnTimeAsync(scheduler, id);
    }

    /// <summary>
    /// A parent waiting for its sub-orchestration leaves memory too: the child's end reads the parent back before it is
    /// applied, so each parent gets its child's result (or, for a child a client terminated, its failure) exactly once,
    /// while the scheduler runs and after a kill -9.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task ParentsWaitingForChildren_LeaveMemory_AndGetEachChildsEndOnce(string store)
    {
        const int Parents = 30;
        await using var rig = await Rig.StartAsync(output, store, "waiting-parents", CappedSettings);
        var (scheduler, http) = (rig.Scheduler, rig.Http);

        async Task FinishChildAsync(DurableTaskClient client, int i)
        {
            foreach (string step in new[] { "a", "b", "c" }) await client.RaiseEventAsync($"child-{i}", "step", step);
            var parent = await client.CompletionAsync($"p-{i:D2}");
            Assert.Equal(OrchestrationRuntimeStatus.Completed, parent.RuntimeStatus);
            Assert.Equal($"{i}:a:b:c", parent.ReadOutputAs<string>());
        }

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            for (int i = 0; i < Parents; i++) await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Parent", i, new StartOrchestrationOptions($"p-{i:D2}"));
            for (int i = 0; i < Parents; i++)
            {
                await Waits.UntilAsync(async () => (await sdk.Client.GetInstanceAsync($"child-{i}"))?.RuntimeStatus, s => s == OrchestrationRuntimeStatus.Running,
                    $"child-{i} to start");
            }

            var hub = await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap, "the hub to move parents and children out of memory");
            Assert.Equal(2 * Parents, hub.Instances);

            for (int i = 0; i < Parents / 2; i++) await FinishChildAsync(sdk.Client, i);
            await sdk.Client.TerminateInstanceAsync($"child-{Parents / 2}", "stop");
            var failed = await sdk.Client.CompletionAsync($"p-{Parents / 2:D2}");
            Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap, "the hub to move waiting instances out of memory again");
        }

        await rig.KillAndRestartAsync(maxLoaded: Cap);

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            for (int i = Parents / 2 + 1; i < Parents; i++) await FinishChildAsync(sdk.Client, i);
        }

        foreach (int i in new[] { 0, Parents - 1 })
        {
            var history = await HubProbe.HistoryAsync(scheduler, $"p-{i:D2}");
            Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceCompleted);
        }

        var terminated = await HubProbe.HistoryAsync(scheduler, $"p-{Parents / 2:D2}");
        Assert.Single(terminated, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.SubOrchestrationInstanceFailed);
    }

    /// <summary>
    /// A scheduled start is a timer too: instances scheduled to start later leave memory past the cap, and each starts
    /// once, never before its time, whether it comes due while the scheduler runs or after a kill -9 (the start does not
    /// read them until then).
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task ScheduledStartsOutOfMemory_StartOnce_NeverEarly_AcrossAKill(string store)
    {
        const int Each = 15;
        await using var rig = await Rig.StartAsync(output, store, "waiting-scheduled", CappedSettings);
        var (scheduler, http) = (rig.Scheduler, rig.Http);

        // a-: due in 8 s, while the scheduler runs; b-: due in 25 s, after a kill.
        var soon = DateTimeOffset.UtcNow.AddSeconds(8);
        var later = DateTimeOffset.UtcNow.AddSeconds(25);
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            for (int i = 0; i < Each; i++)
            {
                await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Hello", i, new StartOrchestrationOptions($"a-{i:D2}", soon));
                await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Hello", i, new StartOrchestrationOptions($"b-{i:D2}", later));
            }

            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.Instances == 2 * Each && h.InMemory <= Cap, "the hub to move scheduled instances out of memory");
            for (int i = 0; i < Each; i++) Assert.Equal($"hello {i}", (await sdk.Client.CompletionAsync($"a-{i:D2}")).ReadOutputAs<string>());
        }

        await rig.KillAndRestartAsync(maxLoaded: Cap);

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            for (int i = 0; i < Each; i++) Assert.Equal($"hello {i}", (await sdk.Client.CompletionAsync($"b-{i:D2}")).ReadOutputAs<string>());
        }

        foreach (var (id, due) in new[] { ("a-00", soon), ($"a-{Each - 1}", soon), ("b-00", later), ($"b-{Each - 1}", later) })
        {
            var history = await HubProbe.HistoryAsync(scheduler, id);
            Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);
            var first = history.First(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted);
            Assert.True(first.Timestamp.ToDateTime() >= due.UtcDateTime, $"{id} started at {first.Timestamp}, before its time {due:O}");
        }
    }

    /// <summary>
    /// Instances that wait only for a client or a timer are parked in the store while they stay in memory, once they
    /// have been still for a moment (2 s): with no cap in play, a start after a kill -9 leaves them in the store and reads
    /// only the instance with work (one whose activity the worker held when the scheduler died). Every instance still
    /// gets its events, its timer (once, never early) and its activity's result.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task StillInstances_ParkedWhileInMemory_AreLeftInTheStoreByAStart(string store)
    {
        const int Approvals = 40, Deadlines = 4;
        await using var rig = await Rig.StartAsync(output, store, "waiting-still",
            (r, path) => [.. SchedulerProcess.StoreSettings(r, path), "--Scheduler:MaxFinishedInstancesInMemory=0"]);
        var (scheduler, http) = (rig.Scheduler, rig.Http);

        var held = new TaskCompletionSource();
        using var release = new CancellationTokenSource();
        void WithWork(DurableTaskRegistry r, bool hold)
        {
            Tasks(r);
            r.AddOrchestratorFunc<string, string>("Work", (context, input) => context.CallActivityAsync<string>("Echo", input));
            r.AddActivityFunc<string, string>("Echo", async (_, input) =>
            {
                if (hold)
                {
                    held.TrySetResult();
                    await Task.Delay(Timeout.Infinite, release.Token);
                }

                return input + "!";
            });
        }

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, r => WithWork(r, hold: true)))
        {
            for (int i = 0; i < Approvals; i++) await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Approval", i, new StartOrchestrationOptions($"s-{i:D2}"));
            for (int i = 0; i < Deadlines; i++) await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Deadline", 20, new StartOrchestrationOptions($"t-{i}"));
            await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Work", "x", new StartOrchestrationOptions("work"));
            for (int i = 0; i < Approvals; i++) await sdk.Client.WaitForInstanceStartAsync($"s-{i:D2}");
            for (int i = 0; i < Deadlines; i++) await sdk.Client.WaitForInstanceStartAsync($"t-{i}");
            await held.Task.WaitAsync(TimeSpan.FromSeconds(30));
            var hub = await HubProbe.HubAsync(http);
            Assert.Equal(Approvals + Deadlines + 1, hub.InMemory);

            // Still for longer than the moment after which waiting instances are parked; then the scheduler dies while
            // the activity is held (released afterwards only so that the worker can stop).
            await Task.Delay(TimeSpan.FromSeconds(4));
            await scheduler.KillAsync();
            release.Cancel();
        }

        await scheduler.StartAsync();
        var started = await HubProbe.HubAsync(http);
        Assert.Equal(Approvals + Deadlines + 1, started.Instances);
        Assert.True(started.InMemory <= 1, $"the start loaded {started.InMemory} instances; only 'work' has work");

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, r => WithWork(r, hold: false)))
        {
            Assert.Equal("x!", (await sdk.Client.CompletionAsync("work")).ReadOutputAs<string>());
            foreach (string step in new[] { "a", "b", "c" })
            {
                for (int i = 0; i < Approvals; i++) await sdk.Client.RaiseEventAsync($"s-{i:D2}", "step", step + i);
            }

            for (int i = 0; i < Approvals; i++)
                Assert.Equal($"{i}:a{i}:b{i}:c{i}", (await sdk.Client.CompletionAsync($"s-{i:D2}")).ReadOutputAs<string>());
            for (int i = 0; i < Deadlines; i++) Assert.Equal("expired", (await sdk.Client.CompletionAsync($"t-{i}")).ReadOutputAs<string>());
        }

        for (int i = 0; i < Deadlines; i++) await AssertTimerFiredOnceOnTimeAsync(scheduler, $"t-{i}");
    }

    /// <summary>
    /// A start reads only what must be in memory: with 100,000 instances waiting for an event in the store, the
    /// scheduler answers <c>/healthz</c> within 5 s of a kill -9 and holds no more than the cap in memory, and an
    /// event raised then completes its instance.
    /// </summary>
    [Fact]
    public async Task Start_WithAHundredThousandWaitingInstances_IsHealthyInSeconds_AndLoadsOnlyWhatItNeeds()
    {
        const int Many = 100_000;
        const int SmallCap = 1_000;
        using var work = new TempFolder("waiting-start");
        Directory.CreateDirectory(work.Path);
        await using var scheduler = new SchedulerProcess(output, work.Path,
            [.. SchedulerProcess.StoreSettings(null, work.Path), $"--Scheduler:MaxUnfinishedInstancesInMemory={SmallCap}"]);
        await scheduler.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{scheduler.HttpPort}/") };

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            await Parallel.ForAsync(0, Many, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, _) =>
                await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Approval", i, new StartOrchestrationOptions($"m-{i:D6}")));
            // Every instance ran its first episode and waits: the counts show them all running.
            await Waits.UntilAsync(() => http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts"),
                c => c.GetProperty("counts").GetProperty("Running").GetInt32() == Many, "every instance to wait for its event", TimeSpan.FromMinutes(3));
            await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= SmallCap, "the hub to move waiting instances out of memory");
        }

        await scheduler.KillAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await scheduler.StartAsync();
        var healthy = clock.Elapsed;
        output.WriteLine($"healthy {healthy.TotalMilliseconds:0} ms after the start with {Many} waiting instances");
        Assert.True(healthy < TimeSpan.FromSeconds(5), $"/healthz answered after {healthy.TotalSeconds:0.0} s");
        var hub = await HubProbe.HubAsync(http);
        Assert.Equal(Many, hub.Instances);
        Assert.True(hub.InMemory <= SmallCap, $"{hub.InMemory} instances in memory after the start; the cap is {SmallCap}");

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            foreach (string step in new[] { "x", "y", "z" }) await sdk.Client.RaiseEventAsync("m-054321", "step", step);
            var done = await sdk.Client.CompletionAsync("m-054321");
            Assert.Equal("54321:x:y:z", done.ReadOutputAs<string>());
        }
    }

    /// <summary>The instance's one timer fired once, never before its time.</summary>
    static async Task AssertTimerFiredOnceOnTimeAsync(SchedulerProcess scheduler, string instanceId)
    {
        var history = await HubProbe.HistoryAsync(scheduler, instanceId);
        var created = Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TimerCreated);
        var fired = Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TimerFired);
        Assert.True(fired.Timestamp.ToDateTime() >= created.TimerCreated.FireAt.ToDateTime(),
            $"the timer of {instanceId} fired at {fired.Timestamp}, before its time {created.TimerCreated.FireAt}");
    }

    /// <summary>A scheduler process on a folder of its own (on a redis-server of its own for "redis"), and a client of its JSON API.</summary>
    sealed class Rig : IAsyncDisposable
    {
        TempFolder _work = null!;
        RedisServer? _redis;

        public SchedulerProcess Scheduler { get; private set; } = null!;
        public HttpClient Http { get; private set; } = null!;

        public static async Task<Rig> StartAsync(ITestOutputHelper output, string store, string name, Func<RedisServer?, string, string[]> settings)
        {
            var rig = new Rig { _work = new TempFolder(name) };
            Directory.CreateDirectory(rig._work.Path);
            rig._redis = store == "redis" ? await RedisServer.StartAsync() : null;
            rig.Scheduler = new SchedulerProcess(output, rig._work.Path, settings(rig._redis, rig._work.Path));
            await rig.Scheduler.StartAsync();
            rig.Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{rig.Scheduler.HttpPort}/") };
            return rig;
        }

        /// <summary>Kills the scheduler (kill -9), starts it on the same store, and checks it loaded at most <paramref name="maxLoaded"/> instances.</summary>
        public async Task KillAndRestartAsync(int maxLoaded)
        {
            await Scheduler.KillAsync();
            await Scheduler.StartAsync();
            var started = await HubProbe.HubAsync(Http);
            Assert.True(started.InMemory <= maxLoaded, $"the start loaded {started.InMemory} instances; at most {maxLoaded} may be");
        }

        public async ValueTask DisposeAsync()
        {
            Http?.Dispose();
            if (Scheduler is not null) await Scheduler.DisposeAsync();
            if (_redis is not null) await _redis.DisposeAsync();
            _work.Dispose();
        }
    }

    /// <summary>Reads, pages and counts see every waiting instance, in memory or only in the store.</summary>
    static async Task AssertEverythingVisibleAsync(DurableTaskClient client, HttpClient http, OrchestrationRuntimeStatus status)
    {
        var evicted = await client.GetInstanceAsync(Id(3), getInputsAndOutputs: true);
        Assert.NotNull(evicted);
        Assert.Equal(status, evicted.RuntimeStatus);
        Assert.Equal(3, evicted.ReadInputAs<int>());

        var listed = new List<string>();
        await foreach (var m in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = "w-", Statuses = [status], PageSize = 7 }))
        {
            listed.Add(m.InstanceId);
        }

        Assert.Equal(Enumerable.Range(0, Waiting).Select(Id), listed);

        var counts = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?prefix=w-");
        Assert.Equal(Waiting, counts.GetProperty("counts").GetProperty(status.ToString()).GetInt32());
        Assert.Equal(Waiting, counts.GetProperty("total").GetInt32());
        var byName = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?name=approval&prefix=w-01");
        Assert.Equal(10, byName.GetProperty("total").GetInt32());
        var all = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts");
        Assert.True(all.GetProperty("counts").GetProperty(status.ToString()).GetInt32() >= Waiting);
    }
}
