using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using DurableTask.Scheduler.Storage.Redis;
using DurableTask.Scheduler.Tests.Storage;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.ScaleOut;

/// <summary>
/// Two scheduler replicas as separate processes on one real Redis: workers connect to each, the client to one.
/// The hub is owned by one replica through a fenced hub lease; the other forwards its calls. Killing the owner or taking
/// Redis away for a while loses nothing, and no orchestration is ever run by two replicas at once.
/// </summary>
[Collection(CrashCollection.Name)]
public sealed class ReplicaTests(ITestOutputHelper output)
{
    const int Sequences = CrashTests.Sequences;

    // Short hub leases keep the tests quick; the takeover bound is LeaseDuration + RenewInterval = 6 s here.
    static readonly string[] LeaseSettings = ["--Scheduler:ScaleOut:LeaseDuration=00:00:05", "--Scheduler:ScaleOut:RenewInterval=00:00:01"];

    [Fact]
    public async Task TwoReplicas_TwoThousandSequences_AllCompleteAndBothWorkersGetWork()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaSet.StartAsync(output, redis, LeaseSettings);
        var runs1 = new ConcurrentDictionary<string, int>();
        var runs2 = new ConcurrentDictionary<string, int>();
        await using var sdk1 = await SdkHost.StartAsync(cluster.First.Address, r => CrashTests.AddSequence(r, runs1));
        await using var sdk2 = await SdkHost.StartAsync(cluster.Second.Address, r => CrashTests.AddSequence(r, runs2));
        var client = sdk2.Client;

        var sw = Stopwatch.StartNew();
        var ids = Enumerable.Range(0, Sequences).Select(i => $"seq-{i:D4}").ToList();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (id, _) => await CrashTests.ScheduleAsync(client, id, TimeSpan.FromSeconds(60)));
        await CrashTests.WaitAllCompletedAsync(client, Sequences, TimeSpan.FromSeconds(120), "seq-");
        output.WriteLine($"{Sequences:N0} sequences through two replicas in {sw.Elapsed.TotalSeconds:F1} s; " +
                         $"activities run by the worker on replica 1: {CrashTests.Executions(runs1):N0}, on replica 2: {CrashTests.Executions(runs2):N0}");
        await CrashTests.CheckOutputsAsync(client, "seq-", Sequences);

        // Work reaches workers on both replicas: one of them gets it through the other replica's forwarded stream.
        Assert.True(CrashTests.Executions(runs1) > 0, "the worker connected to replica 1 ran no activity");
        Assert.True(CrashTests.Executions(runs2) > 0, "the worker connected to replica 2 ran no activity");

        // The JSON API answers on either replica (the non-owner forwards it).
        using var http = new HttpClient();
        foreach (var replica in new[] { cluster.First, cluster.Second })
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/taskhubs/default/orchestrations/seq-0000");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("\"Completed\"", await response.Content.ReadAsStringAsync());

            // Lists across hubs (the dashboard's hub picker, the autoscaling signal) include the hubs other replicas own.
            using var list = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/taskhubs"));
            var hub = Assert.Single(list.RootElement.EnumerateArray());
            Assert.Equal("default", hub.GetProperty("name").GetString());
            Assert.Equal(Sequences, hub.GetProperty("instanceCount").GetInt32());
            using var info = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1"));
            Assert.Equal(["default"], info.RootElement.GetProperty("taskHubs").EnumerateArray().Select(e => e.GetString()));
            using var scale = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/scale"));
            Assert.Equal("default", Assert.Single(scale.RootElement.GetProperty("taskHubs").EnumerateArray()).GetProperty("taskHub").GetString());
        }

        await AssertNoDuplicateSchedulingAsync(redis, Sequences);
    }

    [Fact]
    public async Task OwnerKilledMidRunAndRestarted_EverySequenceCompletes_NoneRunByTwoReplicas()
    {
        // Default hub lease settings: the takeover must fit the default bound of 15 s.
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaSet.StartAsync(output, redis);
        var runs1 = new ConcurrentDictionary<string, int>();
        var runs2 = new ConcurrentDictionary<string, int>();
        await using var sdk1 = await SdkHost.StartAsync(cluster.First.Address, r => CrashTests.AddSequence(r, runs1));
        await using var sdk2 = await SdkHost.StartAsync(cluster.Second.Address, r => CrashTests.AddSequence(r, runs2));
        var client = sdk2.Client;
        int Executed() => CrashTests.Executions(runs1) + CrashTests.Executions(runs2);

        var total = Stopwatch.StartNew();
        var ids = Enumerable.Range(0, Sequences).Select(i => $"seq-{i:D4}").ToList();
        var scheduling = Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (id, _) => await CrashTests.ScheduleAsync(client, id, TimeSpan.FromSeconds(120)));

        // Replica 1 started first and owns the hub: kill it once about a fifth of the activities ran.
        await WaitUntilAsync(() => Executed() >= Sequences, TimeSpan.FromSeconds(90), "a fifth of the activities to run");
        int before = Executed();
        await cluster.First.KillAsync();
        var killed = Stopwatch.StartNew();
        output.WriteLine($"killed the owning replica after {before:N0} activity executions at {total.Elapsed.TotalSeconds:F1} s");

        // Replica 2 takes the hub over and work goes on within the default takeover bound.
        await WaitUntilAsync(() => Executed() > before + 100, TimeSpan.FromSeconds(30), "work to go on after the owner died");
        output.WriteLine($"work went on {killed.ElapsedMilliseconds} ms after the kill");
        Assert.True(killed.Elapsed < TimeSpan.FromSeconds(15), $"work went on only {killed.Elapsed.TotalSeconds:F1} s after the owner died (bound: 15 s)");

        await cluster.First.StartAsync();
        output.WriteLine($"restarted replica 1 at {total.Elapsed.TotalSeconds:F1} s");

        await scheduling;
        await CrashTests.WaitAllCompletedAsync(client, Sequences, TimeSpan.FromSeconds(120), "seq-");
        output.WriteLine($"all {Sequences:N0} sequences completed at {total.Elapsed.TotalSeconds:F1} s");
        await CrashTests.CheckOutputsAsync(client, "seq-", Sequences);

        // The restarted replica serves again, now forwarding to the new owner: a client and a worker connected to it.
        // The worker reconnects with its own backoff: wait until the owner lists both workers (asked through replica 1).
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var listed = Stopwatch.StartNew();
        while (await WorkerCountAsync(http, cluster.First) < 2)
        {
            Assert.True(listed.Elapsed < TimeSpan.FromSeconds(90), "the worker of the restarted replica did not reconnect within 90 s");
            await Task.Delay(200);
        }

        int workerOneBefore = CrashTests.Executions(runs1);
        var more = Enumerable.Range(0, 200).Select(i => $"more-{i:D3}").ToList();
        foreach (string id in more) await CrashTests.ScheduleAsync(sdk1.Client, id, TimeSpan.FromSeconds(60));
        await CrashTests.WaitAllCompletedAsync(sdk1.Client, more.Count, TimeSpan.FromSeconds(60), "more-");
        await CrashTests.CheckOutputsAsync(sdk1.Client, "more-", more.Count);
        Assert.True(CrashTests.Executions(runs1) > workerOneBefore, "the worker connected to the restarted replica got no work");
        var all = runs1.Concat(runs2).GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Sum(r => r.Value));
        foreach (string id in ids)
        {
            for (int step = 0; step < 5; step++) Assert.True(all.ContainsKey($"{id}/{step}"), $"activity {step} of {id} never ran");
        }

        output.WriteLine($"{all.Count(r => r.Value > 1)} activities ran more than once (work in flight on the killed replica is handed out again)");
        await AssertNoDuplicateSchedulingAsync(redis, Sequences + more.Count);
    }

    [Fact]
    public async Task RedisDropsForFiveSeconds_ReplicasReportUnhealthyThenRecover_NothingAcknowledgedIsLost()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaSet.StartAsync(output, redis, LeaseSettings);
        var runs = new ConcurrentDictionary<string, int>();
        await using var sdk1 = await SdkHost.StartAsync(cluster.First.Address, r => CrashTests.AddSequence(r, runs));
        await using var sdk2 = await SdkHost.StartAsync(cluster.Second.Address, r => CrashTests.AddSequence(r, runs));
        var client = sdk2.Client;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };

        // A steady stream of starts through the outage; only acknowledged ones must complete.
        var acknowledged = new ConcurrentBag<string>();
        using var stopLoad = new CancellationTokenSource();
        var load = CrashTests.StartLoadAsync(client, acknowledged, TimeSpan.FromMilliseconds(10), stopLoad.Token);
        await WaitUntilAsync(() => acknowledged.Count >= 100, TimeSpan.FromSeconds(30), "100 acknowledged starts");

        await redis.KillAsync();
        var down = Stopwatch.StartNew();
        foreach (var replica in new[] { cluster.First, cluster.Second })
        {
            while (await replica.IsHealthyAsync(http))
            {
                Assert.True(down.Elapsed < TimeSpan.FromSeconds(15), $"replica on port {replica.GrpcPort} still reports healthy 15 s after Redis went away");
                await Task.Delay(50);
            }
        }

        output.WriteLine($"both replicas unhealthy {down.ElapsedMilliseconds} ms after Redis went away");
        await Task.Delay(TimeSpan.FromSeconds(5) - down.Elapsed);
        await redis.StartAsync();
        var back = Stopwatch.StartNew();
        foreach (var replica in new[] { cluster.First, cluster.Second })
        {
            while (!await replica.IsHealthyAsync(http))
            {
                Assert.True(back.Elapsed < TimeSpan.FromSeconds(30), $"replica on port {replica.GrpcPort} not healthy 30 s after Redis came back");
                await Task.Delay(50);
            }
        }

        output.WriteLine($"both replicas healthy again {back.ElapsedMilliseconds} ms after Redis came back (down {down.Elapsed.TotalSeconds:F1} s)");
        int afterOutage = acknowledged.Count;
        await WaitUntilAsync(() => acknowledged.Count >= afterOutage + 50, TimeSpan.FromSeconds(30), "starts to be acknowledged again");
        stopLoad.Cancel();
        await load;

        var expected = acknowledged.ToList();
        output.WriteLine($"{expected.Count} starts acknowledged around the outage");
        await CrashTests.WaitAllCompletedAsync(client, expected.Count, TimeSpan.FromSeconds(120), "load-");
        foreach (string id in expected)
        {
            var state = await client.GetInstanceAsync(id, getInputsAndOutputs: true);
            Assert.True(state is not null, $"acknowledged instance {id} is missing");
            Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
        }

        await AssertNoDuplicateSchedulingAsync(redis, expected.Count);
    }

    [Fact]
    public async Task SeveralHubs_SpreadOverTheReplicas_AndMoveAtOnceWhenAReplicaStops()
    {
        string[] hubs = ["alpha", "beta", "gamma", "delta"];
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaSet.StartAsync(output, redis, [.. LeaseSettings, $"--DTS_TASK_HUB_NAMES={string.Join(",", hubs)}"]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        // The first replica took every hub; once the second one counts, it hands half of them over.
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var first = await ViewAsync(http, cluster.First);
            var second = await ViewAsync(http, cluster.Second);
            if (first.OwnedHubs.Count == 2 && second.OwnedHubs.Count == 2 && !first.OwnedHubs.Intersect(second.OwnedHubs).Any()) break;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30),
                $"hubs not spread 30 s after the second replica started: [{string.Join(",", first.OwnedHubs)}] and [{string.Join(",", second.OwnedHubs)}]");
            await Task.Delay(200);
        }

        output.WriteLine($"hubs spread two and two {sw.ElapsedMilliseconds} ms after both replicas were up");

        // Starts through either replica land on the owner of each hub.
        foreach (string hub in hubs)
        {
            foreach (var (replica, i) in new[] { (cluster.First, 1), (cluster.Second, 2) })
            {
                using var start = await http.PostAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/taskhubs/{hub}/orchestrations",
                    JsonContent($$"""{"name":"Anything","instanceId":"{{hub}}-via-{{i}}"}"""));
                Assert.True(start.IsSuccessStatusCode, $"start on {hub} through replica {i}: {(int)start.StatusCode} {await start.Content.ReadAsStringAsync()}");
            }
        }

        // A graceful stop hands its hubs over at once: no waiting for its hub leases to expire.
        var stop = Stopwatch.StartNew();
        await cluster.First.StopAsync(TimeSpan.FromSeconds(30));
        while ((await ViewAsync(http, cluster.Second)).OwnedHubs.Count < hubs.Length)
        {
            Assert.True(stop.Elapsed < TimeSpan.FromSeconds(5), "the remaining replica did not own every hub within 5 s of a graceful stop");
            await Task.Delay(100);
        }

        output.WriteLine($"the remaining replica owned every hub {stop.ElapsedMilliseconds} ms after the other one was asked to stop");
        foreach (string hub in hubs)
        {
            for (int i = 1; i <= 2; i++)
            {
                using var get = await http.GetAsync($"http://127.0.0.1:{cluster.Second.HttpPort}/api/v1/taskhubs/{hub}/orchestrations/{hub}-via-{i}");
                Assert.True(get.StatusCode == HttpStatusCode.OK,
                    $"{hub}-via-{i} is missing after the hand-over: {(int)get.StatusCode} {await get.Content.ReadAsStringAsync()}");
            }
        }
    }

    [Fact]
    public async Task DynamicHub_IsClaimedOnItsFirstCall_AndServedThroughEitherReplica()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var cluster = await ReplicaSet.StartAsync(output, redis, [.. LeaseSettings, "--DTS_USE_DYNAMIC_TASK_HUBS=true"]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };

        // A hub nobody has used yet: its first call (through the second replica) makes one replica its owner.
        using (var start = await http.PostAsync($"http://127.0.0.1:{cluster.Second.HttpPort}/api/v1/taskhubs/fresh/orchestrations",
                   JsonContent("""{"name":"Anything","instanceId":"first"}""")))
        {
            Assert.True(start.IsSuccessStatusCode, $"{(int)start.StatusCode} {await start.Content.ReadAsStringAsync()}");
        }

        var owners = new[] { await ViewAsync(http, cluster.First), await ViewAsync(http, cluster.Second) };
        Assert.Single(owners, v => v.OwnedHubs.Contains("fresh", StringComparer.OrdinalIgnoreCase));
        foreach (var replica in new[] { cluster.First, cluster.Second })
        {
            using var get = await http.GetAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/taskhubs/fresh/orchestrations/first");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }

        // An invalid name is refused by whichever replica gets it, as by a single scheduler.
        using var invalid = await http.GetAsync($"http://127.0.0.1:{cluster.First.HttpPort}/api/v1/taskhubs/no%20spaces/orchestrations");
        Assert.True((int)invalid.StatusCode is >= 400 and < 500, $"{(int)invalid.StatusCode}");
    }

    sealed record ScaleOutView(string ReplicaId, List<string> OwnedHubs);

    static async Task<ScaleOutView> ViewAsync(HttpClient http, SchedulerProcess replica)
    {
        var json = await http.GetStringAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/scaleout");
        return System.Text.Json.JsonSerializer.Deserialize<ScaleOutView>(json, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web))!;
    }

    static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// <summary>
    /// Reads every history from Redis: an orchestration run by two replicas at once would schedule an activity twice
    /// (two <c>TaskScheduled</c> events with one id) or record two results for one.
    /// </summary>
    async Task AssertNoDuplicateSchedulingAsync(RedisServer redis, int atLeast)
    {
        await using var provider = new RedisStoreProvider(redis.ConnectionString, new RedisStoreOptions());
        var hub = await provider.Open("default").LoadAsync(CancellationToken.None);
        Assert.True(hub.Instances.Count >= atLeast, $"Redis holds {hub.Instances.Count} instances, expected at least {atLeast}");
        int scheduled = 0;
        foreach (var instance in hub.Instances)
        {
            var events = instance.History.SelectMany(b => b.Events).Select(e => P.HistoryEvent.Parser.ParseFrom(e)).ToList();
            var taskIds = events.Where(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TaskScheduled).Select(e => e.EventId).ToList();
            Assert.True(taskIds.Count == taskIds.Distinct().Count(),
                $"instance '{instance.Record.InstanceId}' scheduled an activity twice: TaskScheduled ids {string.Join(",", taskIds)}");
            var results = events.Where(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TaskCompleted).Select(e => e.TaskCompleted.TaskScheduledId).ToList();
            Assert.True(results.Count == results.Distinct().Count(),
                $"instance '{instance.Record.InstanceId}' recorded two results for one activity: {string.Join(",", results)}");
            Assert.True(events.Count(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted) == 1,
                $"instance '{instance.Record.InstanceId}' has more than one ExecutionStarted event");
            scheduled += taskIds.Count;
        }

        output.WriteLine($"{hub.Instances.Count:N0} histories in Redis, {scheduled:N0} activities scheduled, none twice");
    }

    static async Task<int> WorkerCountAsync(HttpClient http, SchedulerProcess replica)
    {
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{replica.HttpPort}/api/v1/taskhubs/default/workers");
            if (!response.IsSuccessStatusCode) return 0;
            using var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return json.RootElement.GetArrayLength();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > timeout) throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>Two scheduler replicas as processes on one Redis; the first is started (and takes the hub) first.</summary>
sealed class ReplicaSet : IAsyncDisposable
{
    readonly TempFolder _folder;

    ReplicaSet(TempFolder folder, SchedulerProcess first, SchedulerProcess second)
    {
        _folder = folder;
        First = first;
        Second = second;
    }

    public SchedulerProcess First { get; }
    public SchedulerProcess Second { get; }

    public static async Task<ReplicaSet> StartAsync(ITestOutputHelper output, RedisServer redis, params string[] settings)
    {
        var folder = new TempFolder("replicas");
        Directory.CreateDirectory(folder.Path);
        string[] all = [.. SchedulerProcess.StoreSettings(redis, folder.Path), "--Logging:LogLevel:DurableTask=Information", .. settings];
        var first = new SchedulerProcess(output, folder.Path, all);
        var second = new SchedulerProcess(output, folder.Path, all);
        await first.StartAsync();
        await second.StartAsync();
        return new ReplicaSet(folder, first, second);
    }

    public async ValueTask DisposeAsync()
    {
        await First.DisposeAsync();
        await Second.DisposeAsync();
        _folder.Dispose();
    }
}
