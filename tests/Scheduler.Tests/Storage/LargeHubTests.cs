using System.Net.Http.Json;
using System.Text.Json;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// A hub with more finished instances than it may keep in memory (<c>Scheduler:MaxFinishedInstancesInMemory</c>, here
/// 10): the rest live only in the store, and every read, query, reuse and purge still sees them, before and after a
/// restart. Runs the scheduler as a process on SQLite and on a real redis-server.
/// </summary>
public sealed class LargeHubTests(ITestOutputHelper output)
{
    const int Cap = 10;
    const int Echoes = 40;
    const int Failures = 5;

    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task FinishedInstancesBeyondTheCap_AreServedFromTheStore(string store)
    {
        using var work = new TempFolder("largehub");
        Directory.CreateDirectory(work.Path);
        await using var redis = store == "redis" ? await RedisServer.StartAsync() : null;
        await using var scheduler = new SchedulerProcess(output, work.Path,
            [.. SchedulerProcess.StoreSettings(redis, work.Path), $"--Scheduler:MaxFinishedInstancesInMemory={Cap}"]);
        await scheduler.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{scheduler.HttpPort}/") };

        await using (var sdk = await StartSdkAsync(scheduler))
        {
            var client = sdk.Client;
            var started = new List<string>();
            for (int i = 0; i < Echoes; i++) started.Add(await client.ScheduleNewOrchestrationInstanceAsync("Echo", i, new StartOrchestrationOptions($"big-{i:D3}")));
            for (int i = 0; i < Failures; i++)
                started.Add(await client.ScheduleNewOrchestrationInstanceAsync("Fail", i, new StartOrchestrationOptions($"bad-{i:D3}") { Version = i % 2 == 1 ? "2.0" : null }));
            foreach (var id in started) await client.CompletionAsync(id);

            // Only the cap's worth of finished instances stays in memory; the hub still counts all of them.
            var hub = await Waits.UntilAsync(() => HubProbe.HubAsync(http), h => h.InMemory <= Cap, "the hub to evict finished instances");
            Assert.Equal(Echoes + Failures, hub.Instances);

            // An evicted instance reads back with its output and its whole history.
            var first = await client.GetInstanceAsync("big-000", getInputsAndOutputs: true);
            Assert.NotNull(first);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, first.RuntimeStatus);
            Assert.Equal(0, first.ReadOutputAs<int>());
            var history = await HubProbe.HistoryAsync(scheduler, "big-001");
            Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);
            Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted);

            await AssertQueriesSeeEveryInstanceAsync(client, Echoes + Failures);

            // The dashboard's API: filtered counts and pages see the store too.
            var counts = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?prefix=big-01");
            Assert.Equal(10, counts.GetProperty("counts").GetProperty("Completed").GetInt32());
            Assert.Equal(10, counts.GetProperty("total").GetInt32());
            // Names compare ignoring case, as in the list; the store counts them from its indexes.
            var byName = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?name=fAIL");
            Assert.Equal(Failures, byName.GetProperty("counts").GetProperty("Failed").GetInt32());
            Assert.Equal(Failures, byName.GetProperty("total").GetInt32());
            // A version is read from each stored record; the list and the counts agree.
            var byVersion = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?version=2.0");
            Assert.Equal(2, byVersion.GetProperty("counts").GetProperty("Failed").GetInt32());
            Assert.Equal(2, byVersion.GetProperty("total").GetInt32());
            var versionPage = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/orchestrations?version=2.0&status=Failed");
            Assert.Equal(["bad-001", "bad-003"], versionPage.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("instanceId").GetString()!));
            var none = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs/default/counts?name=Echo&prefix=bad-");
            Assert.Equal(0, none.GetProperty("total").GetInt32());
            var listed = new List<string>();
            string? after = null;
            do
            {
                var page = await http.GetFromJsonAsync<JsonElement>($"api/v1/taskhubs/default/orchestrations?pageSize=6&name=Fail{(after is null ? "" : "&after=" + after)}");
                listed.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("instanceId").GetString()!));
                after = page.TryGetProperty("next", out var next) ? next.GetString() : null;
            }
            while (after is not null);
            Assert.Equal(Enumerable.Range(0, Failures).Select(i => $"bad-{i:D3}"), listed);

            // A message for an evicted (finished) instance is dropped, as for any finished instance.
            await client.RaiseEventAsync("big-002", "late", "x");

            // Reusing the id of an evicted instance replaces it, history included.
            await client.ScheduleNewOrchestrationInstanceAsync("Echo", 100, new StartOrchestrationOptions("big-003"));
            var reused = await client.CompletionAsync("big-003");
            Assert.Equal(100, reused.ReadOutputAs<int>());
            var reusedHistory = await HubProbe.HistoryAsync(scheduler, "big-003");
            Assert.Single(reusedHistory, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);
            Assert.Contains("100", reusedHistory.Single(e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted).ExecutionStarted.Input);
        }

        // After a crash the scheduler loads only the cap's worth of finished instances, and still serves the rest.
        await scheduler.KillAsync();
        await scheduler.StartAsync();
        await using (var sdk = await StartSdkAsync(scheduler))
        {
            var client = sdk.Client;
            var hub = await HubProbe.HubAsync(http);
            Assert.Equal(Echoes + Failures, hub.Instances);
            Assert.True(hub.InMemory <= Cap, $"{hub.InMemory} instances in memory after the restart; the cap is {Cap}");
            await AssertQueriesSeeEveryInstanceAsync(client, Echoes + Failures);
            var evicted = await client.GetInstanceAsync("big-004", getInputsAndOutputs: true);
            Assert.Equal(4, evicted!.ReadOutputAs<int>());
            var reused = await client.GetInstanceAsync("big-003", getInputsAndOutputs: true);
            Assert.Equal(100, reused!.ReadOutputAs<int>());
            Assert.Single(await HubProbe.HistoryAsync(scheduler, "big-003"), e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);

            // Purge by filter reaches instances that are only in the store.
            var purged = await client.PurgeAllInstancesAsync(new PurgeInstancesFilter(Statuses: [OrchestrationRuntimeStatus.Completed]));
            Assert.Equal(Echoes, purged.PurgedInstanceCount);
            var left = new List<string>();
            await foreach (var m in client.GetAllInstancesAsync(new OrchestrationQuery { PageSize = 3 })) left.Add(m.InstanceId);
            Assert.Equal(Enumerable.Range(0, Failures).Select(i => $"bad-{i:D3}"), left);
            Assert.Null(await client.GetInstanceAsync("big-000"));
            Assert.Equal(Failures, (await HubProbe.HubAsync(http)).Instances);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task ReusedInstanceId_KeepsOnlyTheNewHistory_AfterARestart(string store)
    {
        using var work = new TempFolder("reuse");
        Directory.CreateDirectory(work.Path);
        await using var redis = store == "redis" ? await RedisServer.StartAsync() : null;
        await using var scheduler = new SchedulerProcess(output, work.Path, SchedulerProcess.StoreSettings(redis, work.Path));
        await scheduler.StartAsync();
        await using (var sdk = await StartSdkAsync(scheduler))
        {
            // The second start replaces the finished first one in the same commit as its own creation.
            await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 1, new StartOrchestrationOptions("same"));
            await sdk.Client.CompletionAsync("same");
            await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Echo", 2, new StartOrchestrationOptions("same"));
            Assert.Equal(2, (await sdk.Client.CompletionAsync("same")).ReadOutputAs<int>());
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();
        var history = await HubProbe.HistoryAsync(scheduler, "same");
        var started = Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionStarted);
        Assert.Equal("2", started.ExecutionStarted.Input);
        Assert.Single(history, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted);
    }

    /// <summary>
    /// An instance's input is kept apart from its record in the store, so the updates of a running instance do not
    /// write it again; after a restart too, where the loaded instance must know that the store keeps it apart (else
    /// every update after the restart would carry a large input in the record).
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("redis")]
    public async Task LargeInput_IsNotWrittenAgainByUpdates_AfterARestart(string store)
    {
        using var work = new TempFolder("input");
        Directory.CreateDirectory(work.Path);
        await using var redis = store == "redis" ? await RedisServer.StartAsync() : null;
        await using var scheduler = new SchedulerProcess(output, work.Path, SchedulerProcess.StoreSettings(redis, work.Path));
        await scheduler.StartAsync();
        string input = new('x', 100_000);
        static void Tasks(DurableTaskRegistry r) => r.AddOrchestratorFunc<string, int>("Gate", async (context, text) =>
        {
            await context.WaitForExternalEvent<string>("go");
            return text.Length;
        });

        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            await sdk.Client.ScheduleNewOrchestrationInstanceAsync("Gate", input, new StartOrchestrationOptions("gate"));
            await sdk.Client.WaitForInstanceStartAsync("gate");
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            // The event and the episode it starts update the instance; its completion updates it once more.
            await sdk.Client.RaiseEventAsync("gate", "go", "now");
            var done = await sdk.Client.CompletionAsync("gate");
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
            Assert.Equal(input.Length, done.ReadOutputAs<int>());
            var state = await sdk.Client.GetInstanceAsync("gate", getInputsAndOutputs: true);
            Assert.Equal(input, state!.ReadInputAs<string>());
        }

        await scheduler.KillAsync();
        long recordBytes = await StoredRecordBytesAsync(redis, work.Path, "gate");
        Assert.True(recordBytes < 4_000, $"after the restart the updates of '{store}' wrote the input in the record again: {recordBytes} bytes");
        await scheduler.StartAsync();
        await using (var sdk = await SdkHost.StartAsync(scheduler.Address, Tasks))
        {
            var state = await sdk.Client.GetInstanceAsync("gate", getInputsAndOutputs: true);
            Assert.Equal(input, state!.ReadInputAs<string>());
        }
    }

    static async Task<long> StoredRecordBytesAsync(RedisServer? redis, string dataPath, string instanceId)
    {
        if (redis is not null)
        {
            await using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
            return await connection.GetDatabase().HashStringLengthAsync($"dts:{{default}}:i:{instanceId}", "record");
        }

        using var sqlite = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataPath, "default.db")};Mode=ReadOnly;Pooling=False");
        sqlite.Open();
        using var command = sqlite.CreateCommand();
        command.CommandText = "SELECT length(record) FROM instances WHERE instance_id = $id";
        command.Parameters.AddWithValue("$id", instanceId);
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>Pages through the hub with small pages (so pages mix memory and store) and with filters.</summary>
    static async Task AssertQueriesSeeEveryInstanceAsync(DurableTaskClient client, int total)
    {
        var expected = Enumerable.Range(0, Failures).Select(i => $"bad-{i:D3}").Concat(Enumerable.Range(0, Echoes).Select(i => $"big-{i:D3}")).ToList();
        Assert.Equal(total, expected.Count);
        var all = new List<string>();
        await foreach (var m in client.GetAllInstancesAsync(new OrchestrationQuery { PageSize = 7, FetchInputsAndOutputs = true }))
        {
            all.Add(m.InstanceId);
            Assert.True(m.RuntimeStatus is OrchestrationRuntimeStatus.Completed or OrchestrationRuntimeStatus.Failed, $"{m.InstanceId} is {m.RuntimeStatus}");
            if (m.RuntimeStatus == OrchestrationRuntimeStatus.Completed) Assert.NotNull(m.SerializedOutput);
        }

        Assert.Equal(expected, all);

        var failed = new List<string>();
        await foreach (var m in client.GetAllInstancesAsync(new OrchestrationQuery { Statuses = [OrchestrationRuntimeStatus.Failed], PageSize = 2 })) failed.Add(m.InstanceId);
        Assert.Equal(expected.Take(Failures), failed);

        var prefixed = new List<string>();
        await foreach (var m in client.GetAllInstancesAsync(new OrchestrationQuery { InstanceIdPrefix = "big-01", PageSize = 4 })) prefixed.Add(m.InstanceId);
        Assert.Equal(Enumerable.Range(10, 10).Select(i => $"big-{i:D3}"), prefixed);
    }

    static Task<SdkHost> StartSdkAsync(SchedulerProcess scheduler) => SdkHost.StartAsync(scheduler.Address, r => r
        .AddOrchestratorFunc<int, int>("Echo", (_, input) => Task.FromResult(input))
        .AddOrchestratorFunc<int, int>("Fail", (_, _) => Task.FromException<int>(new InvalidOperationException("boom"))));
}
