using DurableTask.Core.History;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>Client-side management of instances: terminate, suspend, restart, rewind, scheduling, reuse, waits, reads.</summary>
public sealed class InstanceManagementTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    Task<TestApp> StartAsync(Action<DurableTaskRegistry> tasks) =>
        TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), tasks, output);

    static CancellationToken Timeout() => new CancellationTokenSource(Waits.Default).Token;

    static void Waiter(DurableTaskRegistry r) => r
        .AddOrchestratorFunc<string, string>("Waiter", async (ctx, input) =>
            input + ":" + await ctx.WaitForExternalEvent<string>("Go"));

    [Fact]
    public async Task TimersAndScheduledStarts_MonthsAhead_AreAccepted()
    {
        // Longer than a single OS timer can wait (about 49.7 days).
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Clock", (ctx, _) => Task.FromResult(ctx.CurrentUtcDateTime.ToString("O")))
            .AddOrchestratorFunc<string>("LongTimer", async ctx =>
            {
                await ctx.CreateTimer(TimeSpan.FromDays(120), CancellationToken.None);
                return "fired";
            }));

        string scheduled = await app.Client.ScheduleNewOrchestrationInstanceAsync("Clock", "",
            new StartOrchestrationOptions { StartAt = DateTimeOffset.UtcNow.AddDays(90) });
        string timer = await app.Client.ScheduleNewOrchestrationInstanceAsync("LongTimer");
        await app.Client.WaitForInstanceStartAsync(timer, Timeout());

        // The scheduler keeps serving after arming both.
        string next = await app.Client.ScheduleNewOrchestrationInstanceAsync("Clock", "");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await app.Client.CompletionAsync(next)).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Pending, (await app.Client.GetInstanceAsync(scheduled))!.RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await app.Client.GetInstanceAsync(timer))!.RuntimeStatus);
    }

    [Fact]
    public async Task StartAndCompletionWaiters_AreEachAnsweredAtTheirMoment()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x",
            new StartOrchestrationOptions { StartAt = DateTimeOffset.UtcNow.AddSeconds(2) });
        var completion = app.Client.WaitForInstanceCompletionAsync(id, Timeout());
        var started = await app.Client.WaitForInstanceStartAsync(id, Timeout());

        Assert.Equal(OrchestrationRuntimeStatus.Running, started.RuntimeStatus);
        Assert.False(completion.IsCompleted);
        await app.Client.RaiseEventAsync(id, "Go", "done");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await completion).RuntimeStatus);

        // A start waiter that gives up leaves the next one waiting as it should.
        string next = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "y",
            new StartOrchestrationOptions { StartAt = DateTimeOffset.UtcNow.AddSeconds(2) });
        using (var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => app.Client.WaitForInstanceStartAsync(next, soon.Token));
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await app.Client.WaitForInstanceStartAsync(next, Timeout())).RuntimeStatus);
    }

    [Fact]
    public async Task Terminate_RunningInstance_ReturnsTheGivenOutput()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x");
        await app.Client.WaitForInstanceStartAsync(id, Timeout());

        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = new { reason = "stopped by test" } });

        var state = await app.Client.CompletionAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, state.RuntimeStatus);
        Assert.Equal("{\"reason\":\"stopped by test\"}", state.SerializedOutput);
    }

    [Fact]
    public async Task Terminate_Recursive_TerminatesSubOrchestrations()
    {
        await using var app = await StartAsync(r =>
        {
            Waiter(r);
            r.AddOrchestratorFunc<string, string[]>("Parent", async (ctx, _) => await Task.WhenAll(
                ctx.CallSubOrchestratorAsync<string>("Waiter", "a", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-a" }),
                ctx.CallSubOrchestratorAsync<string>("Waiter", "b", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-b" })));
        });

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", "");
        await app.Client.StatusAsync(id + "-a", OrchestrationRuntimeStatus.Running);
        await app.Client.StatusAsync(id + "-b", OrchestrationRuntimeStatus.Running);

        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = "all", Recursive = true });

        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.Client.CompletionAsync(id)).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.Client.CompletionAsync(id + "-a")).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.Client.CompletionAsync(id + "-b")).RuntimeStatus);
    }

    [Fact]
    public async Task Terminate_SuspendedInstance_EndsTerminated()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x");
        await app.Client.WaitForInstanceStartAsync(id, Timeout());
        await app.Client.SuspendInstanceAsync(id, "pause");
        await app.Client.StatusAsync(id, OrchestrationRuntimeStatus.Suspended);

        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = "bye" });

        var state = await app.Client.CompletionAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, state.RuntimeStatus);
        Assert.Equal("bye", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task SuspendResume_StatusTransitions()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x");
        var started = await app.Client.WaitForInstanceStartAsync(id, Timeout());
        Assert.Equal(OrchestrationRuntimeStatus.Running, started.RuntimeStatus);

        await app.Client.SuspendInstanceAsync(id, "pause");
        await app.Client.StatusAsync(id, OrchestrationRuntimeStatus.Suspended);

        await app.Client.ResumeInstanceAsync(id, "continue");
        await app.Client.StatusAsync(id, OrchestrationRuntimeStatus.Running);

        // Resuming a running instance and suspending a completed one are accepted and change nothing.
        await app.Client.ResumeInstanceAsync(id);
        await app.Client.RaiseEventAsync(id, "Go", "done");
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("x:done", state.ReadOutputAs<string>());

        await app.Client.SuspendInstanceAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await app.Client.GetInstanceAsync(id))!.RuntimeStatus);
    }

    [Fact]
    public async Task Restart_WithSameId_RunsAgain()
    {
        int runs = 0;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Run", async (ctx, input) => input + "#" + await ctx.CallActivityAsync<int>("Count", ""))
            .AddActivityFunc<string, int>("Count", (_, _) => Interlocked.Increment(ref runs)));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Run", "in");
        Assert.Equal("in#1", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
        string firstExecution = await ExecutionIdAsync(app, id);

        string restarted = await app.Client.RestartAsync(id, restartWithNewInstanceId: false);
        Assert.Equal(id, restarted);
        var state = await app.Client.StateAsync(id,
            s => s.RuntimeStatus == OrchestrationRuntimeStatus.Completed && s.ReadOutputAs<string>() == "in#2", "to complete its second run");
        Assert.Equal("\"in\"", state.SerializedInput);
        Assert.NotEqual(firstExecution, await ExecutionIdAsync(app, id));
    }

    [Fact]
    public async Task Restart_WithNewId_StartsANewInstanceWithTheSameInput()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Echo", (ctx, input) => Task.FromResult(ctx.InstanceId + ":" + input)));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Echo", "payload");
        await app.Client.CompletedAsync(id);

        string newId = await app.Client.RestartAsync(id, restartWithNewInstanceId: true);
        Assert.NotEqual(id, newId);
        var state = await app.Client.CompletedAsync(newId);
        Assert.Equal(newId + ":payload", state.ReadOutputAs<string>());
        Assert.Equal("Echo", state.Name);

        // The original is untouched.
        Assert.Equal(id + ":payload", (await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true))!.ReadOutputAs<string>());
    }

    [Fact]
    public async Task Rewind_FailedOrchestration_CompletesWithoutRerunningSucceededWork()
    {
        int firstRuns = 0, flakyRuns = 0;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Rewindable", async (ctx, _) =>
            {
                string a = await ctx.CallActivityAsync<string>("First", "");
                string b = await ctx.CallActivityAsync<string>("FailsOnce", "");
                return a + "+" + b;
            })
            .AddActivityFunc<string, string>("First", (_, _) => "first#" + Interlocked.Increment(ref firstRuns))
            .AddActivityFunc<string, string>("FailsOnce", (_, _) =>
            {
                if (Interlocked.Increment(ref flakyRuns) == 1) throw new InvalidOperationException("transient outage");
                return "second";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Rewindable", "");
        var failed = await app.Client.CompletionAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);

        await app.Client.RewindInstanceAsync(id, "outage is over");

        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("first#1+second", state.ReadOutputAs<string>());
        Assert.Equal(1, firstRuns);
        Assert.Equal(2, flakyRuns);
        Assert.Null(state.FailureDetails);
    }

    [Fact]
    public async Task ScheduledStart_DoesNotStartBeforeTheTime()
    {
        DateTime? activityRanAt = null;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, DateTime>("Clock", async (ctx, _) =>
            {
                await ctx.CallActivityAsync("Stamp", "");
                return ctx.CurrentUtcDateTime;
            })
            .AddActivityFunc<string>("Stamp", (_, _) => { activityRanAt ??= DateTime.UtcNow; }));

        DateTimeOffset startAt = DateTimeOffset.UtcNow.AddSeconds(3);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Clock", "", new StartOrchestrationOptions { StartAt = startAt });

        var pending = await app.Client.GetInstanceAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Pending, pending!.RuntimeStatus);

        var started = await app.Client.WaitForInstanceStartAsync(id, Timeout());
        Assert.NotEqual(OrchestrationRuntimeStatus.Pending, started.RuntimeStatus);

        var state = await app.Client.CompletedAsync(id);
        DateTime orchestrationStart = state.ReadOutputAs<DateTime>();
        output.WriteLine($"startAt {startAt:O}, orchestration clock {orchestrationStart:O}, activity ran {activityRanAt:O}");
        Assert.True(orchestrationStart >= startAt.UtcDateTime, $"orchestration started at {orchestrationStart:O}, before {startAt:O}");
        Assert.True(activityRanAt >= startAt.UtcDateTime, $"activity ran at {activityRanAt:O}, before {startAt:O}");
    }

    [Fact]
    public async Task InstanceIdReuse_DedupeStatusesRejectOrAllowReplacement()
    {
        int runs = 0;
        await using var app = await StartAsync(r =>
        {
            Waiter(r);
            r.AddOrchestratorFunc<string, string>("Once", (_, input) => Task.FromResult(input + "#" + Interlocked.Increment(ref runs)));
        });

        // Not existing yet: created even with dedupe statuses.
        string id = "reuse-" + Guid.NewGuid().ToString("N");
        await app.Client.ScheduleNewOrchestrationInstanceAsync("Once", "a",
            new StartOrchestrationOptions(id).WithDedupeStatuses(OrchestrationRuntimeStatus.Completed));
        Assert.Equal("a#1", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());

        // Completed is a dedupe status: rejected, the instance is unchanged.
        await Assert.ThrowsAsync<DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException>(() => app.Client.ScheduleNewOrchestrationInstanceAsync("Once", "b",
            new StartOrchestrationOptions(id).WithDedupeStatuses(OrchestrationRuntimeStatus.Completed, OrchestrationRuntimeStatus.Failed)));
        Assert.Equal("a#1", (await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true))!.ReadOutputAs<string>());

        // Completed is not a dedupe status: the instance is replaced by a new run.
        await app.Client.ScheduleNewOrchestrationInstanceAsync("Once", "c",
            new StartOrchestrationOptions(id).WithDedupeStatuses(OrchestrationRuntimeStatus.Failed));
        var replaced = await app.Client.StateAsync(id,
            s => s.RuntimeStatus == OrchestrationRuntimeStatus.Completed && s.ReadOutputAs<string>() == "c#2", "to complete the replacement run");
        Assert.Equal("\"c\"", replaced.SerializedInput);

        // A running instance with Running as a dedupe status is not replaced.
        string running = "reuse-running-" + Guid.NewGuid().ToString("N");
        await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "first", new StartOrchestrationOptions(running));
        await app.Client.WaitForInstanceStartAsync(running, Timeout());
        await Assert.ThrowsAsync<DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException>(() => app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "second",
            new StartOrchestrationOptions(running).WithDedupeStatuses(OrchestrationRuntimeStatus.Running, OrchestrationRuntimeStatus.Pending)));
        await app.Client.RaiseEventAsync(running, "Go", "ok");
        Assert.Equal("first:ok", (await app.Client.CompletedAsync(running)).ReadOutputAs<string>());
    }

    [Fact]
    public async Task WaitForStartAndCompletion_ReturnWhenTheInstanceGetsThere()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "w");

        var started = await app.Client.WaitForInstanceStartAsync(id, getInputsAndOutputs: true, Timeout());
        Assert.Equal(OrchestrationRuntimeStatus.Running, started.RuntimeStatus);
        Assert.Equal("\"w\"", started.SerializedInput);

        var completion = app.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, Timeout());
        Assert.False(completion.IsCompleted, "the wait returns only when the instance completes");
        await app.Client.RaiseEventAsync(id, "Go", "now");

        var state = await completion;
        Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
        Assert.Equal("w:now", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task GetInstance_WithAndWithoutPayloads()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Payloads", (ctx, input) =>
            {
                ctx.SetCustomStatus("status!");
                return Task.FromResult(input.ToUpperInvariant());
            }));

        DateTimeOffset before = DateTimeOffset.UtcNow.AddSeconds(-1);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Payloads", "input text");
        await app.Client.CompletedAsync(id);

        var full = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true);
        Assert.NotNull(full);
        Assert.Equal("\"input text\"", full.SerializedInput);
        Assert.Equal("\"INPUT TEXT\"", full.SerializedOutput);
        Assert.Equal("\"status!\"", full.SerializedCustomStatus);

        var bare = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: false);
        Assert.NotNull(bare);
        Assert.Equal(id, bare.InstanceId);
        Assert.Equal("Payloads", bare.Name);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, bare.RuntimeStatus);
        Assert.Null(bare.SerializedInput);
        Assert.Null(bare.SerializedOutput);
        Assert.True(bare.CreatedAt >= before && bare.CreatedAt <= DateTimeOffset.UtcNow, $"CreatedAt {bare.CreatedAt:O}");
        Assert.True(bare.LastUpdatedAt >= bare.CreatedAt, $"LastUpdatedAt {bare.LastUpdatedAt:O} < CreatedAt {bare.CreatedAt:O}");

        Assert.Null(await app.Client.GetInstanceAsync("does-not-exist-" + Guid.NewGuid().ToString("N")));
    }

    [Fact]
    public async Task History_IsReturnedInOrderWithMatchingIds()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Story", async (ctx, _) =>
            {
                string a = await ctx.CallActivityAsync<string>("Echo", "one");
                ctx.SetCustomStatus("waiting");
                string e = await ctx.WaitForExternalEvent<string>("Signal");
                await ctx.CreateTimer(TimeSpan.FromMilliseconds(100), CancellationToken.None);
                string b = await ctx.CallActivityAsync<string>("Echo", "two");
                return $"{a},{e},{b}";
            })
            .AddActivityFunc<string, string>("Echo", (_, s) => s));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Story", "");
        await app.Client.StateAsync(id, s => s.SerializedCustomStatus == "\"waiting\"", "to wait for the signal");
        await app.Client.RaiseEventAsync(id, "Signal", "sig");
        Assert.Equal("one,sig,two", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());

        var history = await app.Client.GetOrchestrationHistoryAsync(id);
        var meaningful = history.Where(e => e is not OrchestratorStartedEvent and not OrchestratorCompletedEvent).ToList();
        Assert.Equal(
            [
                EventType.ExecutionStarted, EventType.TaskScheduled, EventType.TaskCompleted, EventType.EventRaised,
                EventType.TimerCreated, EventType.TimerFired, EventType.TaskScheduled, EventType.TaskCompleted, EventType.ExecutionCompleted,
            ],
            meaningful.Select(e => e.EventType).ToList());

        var scheduled = meaningful.OfType<TaskScheduledEvent>().ToList();
        var completed = meaningful.OfType<TaskCompletedEvent>().ToList();
        Assert.Equal(scheduled.Select(s => s.EventId), completed.Select(c => c.TaskScheduledId));
        Assert.Equal(2, scheduled.Count);
        Assert.Contains("\"one\"", scheduled[0].Input);
        Assert.Contains("\"two\"", scheduled[1].Input);
        Assert.Equal("\"sig\"", meaningful.OfType<EventRaisedEvent>().Single().Input);
        Assert.Equal(meaningful.OfType<TimerCreatedEvent>().Single().EventId, meaningful.OfType<TimerFiredEvent>().Single().TimerId);
        var done = meaningful.OfType<ExecutionCompletedEvent>().Single();
        Assert.Equal("\"one,sig,two\"", done.Result);
        foreach (var e in history) output.WriteLine($"{e.Timestamp:O} {e.EventType} #{e.EventId}");
        var created = ((ExecutionStartedEvent)meaningful[0]).Timestamp;
        Assert.All(history, e => Assert.InRange(e.Timestamp, created.AddSeconds(-5), DateTime.UtcNow.AddSeconds(5)));

        await Assert.ThrowsAsync<ArgumentException>(() => app.Client.GetOrchestrationHistoryAsync("missing-" + Guid.NewGuid().ToString("N")));
    }

    [Fact]
    public async Task Terminate_WhileWaitingOnALongTimer_IsPrompt()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Sleeper", async (ctx, _) =>
            {
                await ctx.CreateTimer(TimeSpan.FromHours(1), CancellationToken.None);
                return "woke up";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Sleeper", "");
        await app.Client.WaitForInstanceStartAsync(id, Timeout());
        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = "enough" });

        var state = await app.Client.CompletionAsync(id, TimeSpan.FromSeconds(30));
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, state.RuntimeStatus);
        Assert.Equal("enough", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task Rewind_OrchestrationFailedByASubOrchestration_RewindsTheChildToo()
    {
        int attempts = 0;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Parent", async (ctx, _) =>
                "parent(" + await ctx.CallSubOrchestratorAsync<string>("Child", "", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-child" }) + ")")
            .AddOrchestratorFunc<string, string>("Child", async (ctx, _) => "child(" + await ctx.CallActivityAsync<string>("FailsOnce", "") + ")")
            .AddActivityFunc<string, string>("FailsOnce", (_, _) =>
            {
                if (Interlocked.Increment(ref attempts) == 1) throw new InvalidOperationException("first attempt fails");
                return "ok";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", "");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await app.Client.CompletionAsync(id)).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await app.Client.CompletionAsync(id + "-child")).RuntimeStatus);

        await app.Client.RewindInstanceAsync(id, "retry the tree");

        Assert.Equal("parent(child(ok))", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
        Assert.Equal("child(ok)", (await app.Client.CompletedAsync(id + "-child")).ReadOutputAs<string>());
        Assert.Equal(2, attempts);
    }

    [Fact]
    public async Task Rewind_OfANonFailedInstance_IsRefused()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x");
        await app.Client.WaitForInstanceStartAsync(id, Timeout());

        await Assert.ThrowsAsync<InvalidOperationException>(() => app.Client.RewindInstanceAsync(id, "not failed"));
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await app.Client.GetInstanceAsync(id))!.RuntimeStatus);
    }

    [Fact]
    public async Task Purge_OfARunningInstance_DoesNotRemoveIt()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x");
        await app.Client.WaitForInstanceStartAsync(id, Timeout());

        try
        {
            var result = await app.Client.PurgeInstanceAsync(id);
            Assert.Equal(0, result.PurgedInstanceCount);
        }
        catch (InvalidOperationException ex)
        {
            output.WriteLine($"purge refused: {ex.Message}");
        }

        Assert.Equal(OrchestrationRuntimeStatus.Running, (await app.Client.GetInstanceAsync(id))!.RuntimeStatus);
        await app.Client.RaiseEventAsync(id, "Go", "still here");
        Assert.Equal("x:still here", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
    }

    [Fact]
    public async Task Terminate_Recursive_ReachesGrandchildren()
    {
        await using var app = await StartAsync(r =>
        {
            Waiter(r);
            r.AddOrchestratorFunc<string, string>("Middle", async (ctx, _) =>
                await ctx.CallSubOrchestratorAsync<string>("Waiter", "g", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-g" }));
            r.AddOrchestratorFunc<string, string>("Top", async (ctx, _) =>
                await ctx.CallSubOrchestratorAsync<string>("Middle", "", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-m" }));
        });

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Top", "");
        await app.Client.StatusAsync(id + "-m-g", OrchestrationRuntimeStatus.Running);

        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Recursive = true });

        foreach (string instance in new[] { id, id + "-m", id + "-m-g" })
        {
            Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.Client.CompletionAsync(instance)).RuntimeStatus);
        }
    }

    [Fact]
    public async Task ListInstanceIds_PagesByLastInstanceKey()
    {
        await using var app = await StartAsync(r => r.AddOrchestratorFunc<string, string>("Echo", (_, s) => Task.FromResult(s)));
        var ids = Enumerable.Range(0, 7).Select(i => $"list-{i}").ToList();
        foreach (string id in ids) await app.Client.ScheduleNewOrchestrationInstanceAsync("Echo", id, new StartOrchestrationOptions(id));
        foreach (string id in ids) await app.Client.CompletedAsync(id);
        string running = await app.Client.ScheduleNewOrchestrationInstanceAsync("Echo", "later",
            new StartOrchestrationOptions("list-pending", DateTimeOffset.UtcNow.AddHours(1)));

        var seen = new List<string>();
        string? key = null;
        for (int page = 0; ; page++)
        {
            Assert.True(page < 10, "paging terminates");
            var result = await app.Client.ListInstanceIdsAsync([OrchestrationRuntimeStatus.Completed], pageSize: 3, lastInstanceKey: key);
            Assert.True(result.Values.Count <= 3, $"page of {result.Values.Count}");
            seen.AddRange(result.Values);
            key = result.ContinuationToken;
            if (key is null || result.Values.Count == 0) break;
        }

        Assert.Equal(ids.Order(), seen.Order());
        Assert.DoesNotContain(running, seen);
    }

    [Fact]
    public async Task ScheduledInstance_CanBeTerminatedBeforeItStarts()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "x",
            new StartOrchestrationOptions { StartAt = DateTimeOffset.UtcNow.AddHours(1) });
        Assert.Equal(OrchestrationRuntimeStatus.Pending, (await app.Client.GetInstanceAsync(id))!.RuntimeStatus);

        await app.Client.TerminateInstanceAsync(id, new TerminateInstanceOptions { Output = "cancelled" });

        var state = await app.Client.CompletionAsync(id, TimeSpan.FromSeconds(30));
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, state.RuntimeStatus);
        Assert.Equal("cancelled", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task ScheduledInstance_ReceivesEventsRaisedBeforeItStarts()
    {
        await using var app = await StartAsync(Waiter);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "early",
            new StartOrchestrationOptions { StartAt = DateTimeOffset.UtcNow.AddSeconds(2) });

        await app.Client.RaiseEventAsync(id, "Go", "bird");

        Assert.Equal("early:bird", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
    }

    async Task<string> ExecutionIdAsync(TestApp app, string id) =>
        (await scheduler.Raw(app.Hub).GetInstanceAsync(new Microsoft.DurableTask.Protobuf.GetInstanceRequest { InstanceId = id }))
        .OrchestrationState.ExecutionId;
}
