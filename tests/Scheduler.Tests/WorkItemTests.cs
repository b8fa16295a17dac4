using System.Collections.Concurrent;
using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Work-item dispatch: several workers, limits, filters, disconnects, duplicate completions, keep-alive,
/// history streaming and chunked completions. The scheduler pings every second and streams any non-empty
/// past history to workers that announce streaming.
/// </summary>
public sealed class WorkItemTests(WorkItemSchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<WorkItemSchedulerFixture>
{
    [Fact]
    public async Task TwoWorkers_BothReceiveWork()
    {
        // Each activity waits until both workers have run one (or until 30 s after the first one started). With at most 4 activities per worker,
        // the fan-out can only finish quickly if the scheduler hands work to the second worker too.
        var seen = new ConcurrentDictionary<string, bool>();
        var both = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var giveUp = new Lazy<Task>(() => Task.Delay(TimeSpan.FromSeconds(30)));
        Action<DurableTaskRegistry> labelled(string label) => r => r
            .AddOrchestratorFunc<int, string[]>("FanOut", async (ctx, n) =>
                await Task.WhenAll(Enumerable.Range(0, n).Select(i => ctx.CallActivityAsync<string>("Where", i))))
            .AddActivityFunc<int, string>("Where", async (_, _) =>
            {
                seen[label] = true;
                if (seen.Count == 2) both.TrySetResult();
                await Task.WhenAny(both.Task, giveUp.Value);
                return label;
            });

        string hub = SchedulerFixture.NewHub();
        Action<IDurableTaskWorkerBuilder> limit = b => b.Configure(o => o.Concurrency.MaximumConcurrentActivityWorkItems = 4);
        await using var a = await TestApp.StartAsync(scheduler, hub, labelled("A"), output, limit);
        await using var b = await TestApp.StartAsync(scheduler, hub, labelled("B"), output, limit);

        string id = await a.Client.ScheduleNewOrchestrationInstanceAsync("FanOut", 40);
        string[] labels = (await a.Client.CompletedAsync(id, TimeSpan.FromSeconds(120))).ReadOutputAs<string[]>()!;

        output.WriteLine($"A ran {labels.Count(l => l == "A")}, B ran {labels.Count(l => l == "B")}");
        Assert.Equal(40, labels.Length);
        Assert.Equal(["A", "B"], labels.Distinct().Order());
    }

    [Fact]
    public async Task WorkerConcurrencyLimit_IsHonoured()
    {
        int current = 0, peak = 0, ran = 0;
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<int, int>("FanOut", async (ctx, n) =>
                (await Task.WhenAll(Enumerable.Range(0, n).Select(i => ctx.CallActivityAsync<int>("Busy", i)))).Length)
            .AddActivityFunc<int, int>("Busy", async (_, i) =>
            {
                int now = Interlocked.Increment(ref current);
                int seen;
                while ((seen = Volatile.Read(ref peak)) < now && Interlocked.CompareExchange(ref peak, now, seen) != seen) { }
                await Task.Delay(150);
                Interlocked.Decrement(ref current);
                Interlocked.Increment(ref ran);
                return i;
            }),
            output,
            b => b.Configure(o => o.Concurrency.MaximumConcurrentActivityWorkItems = 2));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("FanOut", 12);
        Assert.Equal(12, (await app.Client.CompletedAsync(id)).ReadOutputAs<int>());
        output.WriteLine($"peak concurrent activities: {peak}");
        Assert.Equal(12, ran);
        Assert.InRange(peak, 1, 2);
    }

    [Fact]
    public async Task WorkItemFilters_EachWorkerOnlyGetsItsOwnWork()
    {
        string hub = SchedulerFixture.NewHub();
        Action<DurableTaskRegistry> tasksA = r => r
            .AddOrchestratorFunc<int, string>("OrchA", async (ctx, i) => await ctx.CallActivityAsync<string>("ActA", i))
            .AddActivityFunc<int, string>("ActA", (_, i) => $"A{i}");
        Action<DurableTaskRegistry> tasksB = r => r
            .AddOrchestratorFunc<int, string>("OrchB", async (ctx, i) => await ctx.CallActivityAsync<string>("ActB", i))
            .AddActivityFunc<int, string>("ActB", (_, i) => $"B{i}");

        await using var a = await TestApp.StartAsync(scheduler, hub, tasksA, output, w => w.UseWorkItemFilters());
        await using var b = await TestApp.StartAsync(scheduler, hub, tasksB, output, w => w.UseWorkItemFilters());

        var ids = new List<(string Id, string Expected)>();
        for (int i = 0; i < 10; i++)
        {
            ids.Add((await a.Client.ScheduleNewOrchestrationInstanceAsync("OrchA", i), $"A{i}"));
            ids.Add((await a.Client.ScheduleNewOrchestrationInstanceAsync("OrchB", i), $"B{i}"));
        }

        foreach (var (id, expected) in ids)
        {
            // A work item sent to the wrong worker fails with "orchestrator/activity not found".
            Assert.Equal(expected, (await a.Client.CompletedAsync(id)).ReadOutputAs<string>());
        }
    }

    [Fact]
    public async Task WorkerDisconnectMidActivity_ActivityIsRedeliveredToAnotherWorker()
    {
        string hub = SchedulerFixture.NewHub();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Action<DurableTaskRegistry> tasks(string label, bool block) => r => r
            .AddOrchestratorFunc<string, string>("Job", async (ctx, _) => await ctx.CallActivityAsync<string>("Work", ""))
            .AddActivityFunc<string, string>("Work", async (_, _) =>
            {
                if (block)
                {
                    started.TrySetResult();
                    await release.Task;
                }

                return "done by " + label;
            });

        await using var client = await TestApp.StartAsync(scheduler, hub, tasks: null, output);
        await using var first = await TestApp.StartAsync(scheduler, hub, tasks("first", block: true), output,
            shutdownTimeout: TimeSpan.FromSeconds(2));

        string id = await client.Client.ScheduleNewOrchestrationInstanceAsync("Job", "");
        await started.Task.WaitAsync(Waits.Default);
        await first.DisposeAsync();

        try
        {
            await using var second = await TestApp.StartAsync(scheduler, hub, tasks("second", block: false), output);
            var state = await client.Client.CompletedAsync(id);
            Assert.Equal("done by second", state.ReadOutputAs<string>());
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task DuplicateCompletions_AreAcceptedAndAppliedOnce()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw);
        string id = "dup-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "RawOrch", Input = "\"in\"" });

        // First episode: schedule one activity; the completion is sent twice.
        var first = await worker.NextOrchestratorAsync(id);
        var started = Assert.Single(first.OrchestratorRequest.NewEvents, e => e.ExecutionStarted is not null);
        Assert.Equal("RawOrch", started.ExecutionStarted.Name);
        Assert.Equal("\"in\"", started.ExecutionStarted.Input);
        var schedule = new P.OrchestratorResponse
        {
            InstanceId = id,
            CompletionToken = first.CompletionToken,
            Actions = { new P.OrchestratorAction { Id = 0, ScheduleTask = new P.ScheduleTaskAction { Name = "RawAct", Input = "\"x\"" } } },
        };
        await raw.CompleteOrchestratorTaskAsync(schedule);
        await raw.CompleteOrchestratorTaskAsync(schedule);

        // The activity: completed twice.
        var activity = await worker.NextActivityAsync(id);
        Assert.Equal("RawAct", activity.ActivityRequest.Name);
        Assert.Equal(0, activity.ActivityRequest.TaskId);
        var result = new P.ActivityResponse
        {
            InstanceId = id,
            TaskId = 0,
            Result = "\"y\"",
            CompletionToken = activity.CompletionToken,
        };
        await raw.CompleteActivityTaskAsync(result);
        await raw.CompleteActivityTaskAsync(result);

        // Second episode: exactly one scheduled task in the past, exactly one result among the new events.
        var second = await worker.NextOrchestratorAsync(id);
        var past = await PastEventsAsync(raw, second);
        Assert.Single(past, e => e.TaskScheduled is not null);
        var completed = Assert.Single(second.OrchestratorRequest.NewEvents, e => e.TaskCompleted is not null);
        Assert.Equal(0, completed.TaskCompleted.TaskScheduledId);
        Assert.Equal("\"y\"", completed.TaskCompleted.Result);
        Assert.Equal(P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted, second.OrchestratorRequest.NewEvents[0].EventTypeCase);

        var done = new P.OrchestratorResponse
        {
            InstanceId = id,
            CompletionToken = second.CompletionToken,
            Actions =
            {
                new P.OrchestratorAction
                {
                    Id = 1,
                    CompleteOrchestration = new P.CompleteOrchestrationAction
                    {
                        OrchestrationStatus = P.OrchestrationStatus.Completed,
                        Result = "\"done\"",
                    },
                },
            },
        };
        await raw.CompleteOrchestratorTaskAsync(done);
        await raw.CompleteOrchestratorTaskAsync(done);

        var state = await Waits.UntilAsync(
            async () => (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true })).OrchestrationState,
            s => s.OrchestrationStatus == P.OrchestrationStatus.Completed, "the raw instance to complete");
        Assert.Equal("\"done\"", state.Output);
    }

    [Fact]
    public async Task HealthPings_ArriveOnAnIdleStream()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await worker.NextAsync(w => w.HealthPing is not null, "a health ping", TimeSpan.FromSeconds(10));
        await worker.NextAsync(w => w.HealthPing is not null, "a second health ping", TimeSpan.FromSeconds(10));
        output.WriteLine($"two health pings after {sw.ElapsedMilliseconds} ms (interval 1 s)");
    }

    [Fact]
    public async Task HistoryStreaming_OnlyForWorkersAnnouncingIt()
    {
        // A worker announcing history streaming gets an empty past and streams it.
        var streamed = await RunTwoEpisodesAsync(new P.GetWorkItemsRequest { Capabilities = { P.WorkerCapability.HistoryStreaming } });
        Assert.True(streamed.WorkItem.OrchestratorRequest.RequiresHistoryStreaming, "the work item asks the worker to stream its history");
        Assert.Empty(streamed.WorkItem.OrchestratorRequest.PastEvents);
        Assert.Contains(streamed.Past, e => e.ExecutionStarted is not null);
        Assert.Contains(streamed.Past, e => e.TaskScheduled is not null && e.EventId == 0);

        // A worker that did not announce it gets the past inline.
        var inline = await RunTwoEpisodesAsync(new P.GetWorkItemsRequest());
        Assert.False(inline.WorkItem.OrchestratorRequest.RequiresHistoryStreaming);
        Assert.Contains(inline.WorkItem.OrchestratorRequest.PastEvents, e => e.ExecutionStarted is not null);
        Assert.Contains(inline.WorkItem.OrchestratorRequest.PastEvents, e => e.TaskScheduled is not null && e.EventId == 0);
    }

    async Task<(P.WorkItem WorkItem, List<P.HistoryEvent> Past)> RunTwoEpisodesAsync(P.GetWorkItemsRequest request)
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw, request);
        string id = "stream-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "RawOrch", Input = "\"in\"" });

        var first = await worker.NextOrchestratorAsync(id);
        await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
        {
            InstanceId = id,
            CompletionToken = first.CompletionToken,
            Actions = { new P.OrchestratorAction { Id = 0, ScheduleTask = new P.ScheduleTaskAction { Name = "RawAct", Input = "1" } } },
        });
        var activity = await worker.NextActivityAsync(id);
        await raw.CompleteActivityTaskAsync(new P.ActivityResponse
        {
            InstanceId = id, TaskId = 0, Result = "2", CompletionToken = activity.CompletionToken,
        });

        var second = await worker.NextOrchestratorAsync(id);
        var past = await PastEventsAsync(raw, second);
        await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
        {
            InstanceId = id,
            CompletionToken = second.CompletionToken,
            Actions =
            {
                new P.OrchestratorAction
                {
                    Id = 1,
                    CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = "3" },
                },
            },
        });
        return (second, past);
    }

    static async Task<List<P.HistoryEvent>> PastEventsAsync(P.TaskHubSidecarService.TaskHubSidecarServiceClient raw, P.WorkItem item)
    {
        var request = item.OrchestratorRequest;
        if (!request.RequiresHistoryStreaming) return request.PastEvents.ToList();
        var events = new List<P.HistoryEvent>();
        using var call = raw.StreamInstanceHistory(new P.StreamInstanceHistoryRequest
        {
            InstanceId = request.InstanceId,
            ExecutionId = request.ExecutionId,
            ForWorkItemProcessing = true,
        }, deadline: DateTime.UtcNow.AddSeconds(30));
        await foreach (var chunk in call.ResponseStream.ReadAllAsync()) events.AddRange(chunk.Events);
        return events;
    }

    [Fact]
    public async Task HistoryStreaming_SdkOrchestrationWithSeveralActivitiesCompletes()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<int, int>("Chain", async (ctx, n) =>
            {
                int value = n;
                for (int i = 0; i < 6; i++) value = await ctx.CallActivityAsync<int>("Inc", value);
                await ctx.CreateTimer(TimeSpan.FromMilliseconds(50), CancellationToken.None);
                return value;
            })
            .AddActivityFunc<int, int>("Inc", (_, v) => v + 1),
            output);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Chain", 100);
        Assert.Equal(106, (await app.Client.CompletedAsync(id)).ReadOutputAs<int>());
    }

    [Fact]
    public async Task ChunkedCompletion_LargeFanOutCompletes()
    {
        const int count = 24, size = 100_000;
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<int, long>("BigFanOut", async (ctx, n) =>
            {
                // ~2.4 MB of scheduled inputs in one episode: more than two 1 MB chunks.
                var tasks = Enumerable.Range(0, n).Select(i => ctx.CallActivityAsync<int>("Length", new string((char)('a' + i % 26), size)));
                int[] lengths = await Task.WhenAll(tasks);
                return lengths.Sum(l => (long)l);
            })
            .AddActivityFunc<string, int>("Length", (_, s) => s.Length),
            output,
            grpc: o => o.CompleteOrchestrationWorkItemChunkSizeInBytes = 1024 * 1024);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("BigFanOut", count);
        Assert.Equal((long)count * size, (await app.Client.CompletedAsync(id, TimeSpan.FromSeconds(120))).ReadOutputAs<long>());

        var history = await app.Client.GetOrchestrationHistoryAsync(id);
        Assert.Equal(count, history.OfType<global::DurableTask.Core.History.TaskScheduledEvent>().Count());
    }
}
