using System.Collections.Concurrent;
using DurableTask.Core.History;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>Orchestration patterns run by the real .NET SDK worker and client against the scheduler.</summary>
public sealed class OrchestrationPatternTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    Task<TestApp> StartAsync(Action<DurableTaskRegistry> tasks) =>
        TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), tasks, output);

    [Fact]
    public async Task ActivitySequence_RunsActivitiesInOrder()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, List<string>>("Sequence", async (ctx, prefix) =>
            [
                await ctx.CallActivityAsync<string>("Greet", prefix + "Tokyo"),
                await ctx.CallActivityAsync<string>("Greet", prefix + "Seattle"),
                await ctx.CallActivityAsync<string>("Greet", prefix + "London"),
            ])
            .AddActivityFunc<string, string>("Greet", (_, city) => $"Hello, {city}!"));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Sequence", "to ");
        var state = await app.Client.CompletedAsync(id);

        Assert.Equal(["Hello, to Tokyo!", "Hello, to Seattle!", "Hello, to London!"], state.ReadOutputAs<List<string>>());
        Assert.Equal("Sequence", state.Name);
        Assert.Equal("\"to \"", state.SerializedInput);
    }

    [Fact]
    public async Task FanOutFanIn_ThousandActivities_SumIsCorrect()
    {
        const int count = 1000;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<int, long>("FanOut", async (ctx, n) =>
            {
                var tasks = Enumerable.Range(1, n).Select(i => ctx.CallActivityAsync<long>("Double", i)).ToList();
                long[] results = await Task.WhenAll(tasks);
                return results.Sum();
            })
            .AddActivityFunc<int, long>("Double", (_, i) => 2L * i));

        var sw = System.Diagnostics.Stopwatch.StartNew();
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("FanOut", count);
        var state = await app.Client.CompletedAsync(id, TimeSpan.FromSeconds(120));
        output.WriteLine($"fan-out/fan-in of {count} activities took {sw.ElapsedMilliseconds} ms");

        Assert.Equal(2L * count * (count + 1) / 2, state.ReadOutputAs<long>());
    }

    [Fact]
    public async Task SubOrchestration_ResultReachesParent()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<int, int>("Parent", async (ctx, n) =>
            {
                int a = await ctx.CallSubOrchestratorAsync<int>("Child", n);
                int b = await ctx.CallSubOrchestratorAsync<int>("Child", n + 1, new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-child" });
                return a + b;
            })
            .AddOrchestratorFunc<int, int>("Child", async (ctx, n) => await ctx.CallActivityAsync<int>("Square", n))
            .AddActivityFunc<int, int>("Square", (_, n) => n * n));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", 3);
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal(9 + 16, state.ReadOutputAs<int>());

        var child = await app.Client.GetInstanceAsync(id + "-child", getInputsAndOutputs: true);
        Assert.NotNull(child);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, child.RuntimeStatus);
        Assert.Equal("Child", child.Name);
        Assert.Equal(16, child.ReadOutputAs<int>());
    }

    [Fact]
    public async Task SubOrchestrationFailure_FailureDetailsChainReachesParentAndClient()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Parent", async (ctx, _) =>
            {
                try
                {
                    return await ctx.CallSubOrchestratorAsync<string>("Child", "x");
                }
                catch (TaskFailedException ex)
                {
                    // Shows what the parent saw of the child's failure.
                    ctx.SetCustomStatus(new[]
                    {
                        ex.FailureDetails.ErrorType,
                        ex.FailureDetails.ErrorMessage,
                        ex.FailureDetails.InnerFailure?.ErrorType ?? "",
                        ex.FailureDetails.InnerFailure?.ErrorMessage ?? "",
                    });
                    throw;
                }
            })
            .AddOrchestratorFunc<string, string>("Child", Task<string> (_, _) =>
                throw new InvalidOperationException("child failed", new ArgumentException("root cause"))));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", "go");
        var state = await app.Client.CompletionAsync(id);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, state.RuntimeStatus);
        string[] seen = state.ReadCustomStatusAs<string[]>()!;
        Assert.Equal(typeof(InvalidOperationException).FullName, seen[0]);
        Assert.Equal("child failed", seen[1]);
        Assert.Equal(typeof(ArgumentException).FullName, seen[2]);
        Assert.Equal("root cause", seen[3]);

        // The client sees the parent's failure, whose chain contains the child's failure and its cause.
        Assert.NotNull(state.FailureDetails);
        var chain = Chain(state.FailureDetails).ToList();
        output.WriteLine(string.Join(" -> ", chain.Select(f => $"{f.ErrorType}: {f.ErrorMessage}")));
        int child = chain.FindIndex(f => f.ErrorType == typeof(InvalidOperationException).FullName && f.ErrorMessage == "child failed");
        Assert.True(child >= 0, "the child's failure is in the chain");
        Assert.True(chain.Skip(child + 1).Any(f => f.ErrorType == typeof(ArgumentException).FullName && f.ErrorMessage == "root cause"),
            "the child's inner exception is in the chain below it");
    }

    static IEnumerable<TaskFailureDetails> Chain(TaskFailureDetails? details)
    {
        for (var d = details; d is not null; d = d.InnerFailure) yield return d;
    }

    [Fact]
    public async Task DurableTimer_NeverFiresEarly()
    {
        var delay = TimeSpan.FromSeconds(2);
        DateTime? wallClockAfterTimer = null;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, DateTime[]>("Timer", async (ctx, _) =>
            {
                DateTime fireAt = ctx.CurrentUtcDateTime + delay;
                await ctx.CreateTimer(fireAt, CancellationToken.None);
                DateTime resumedAt = ctx.CurrentUtcDateTime;
                await ctx.CallActivityAsync("Clock", "");
                return [fireAt, resumedAt];
            })
            .AddActivityFunc<string>("Clock", (_, _) => { wallClockAfterTimer = DateTime.UtcNow; }));

        DateTime startWall = DateTime.UtcNow;
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Timer", "");
        var state = await app.Client.CompletedAsync(id);
        DateTime[] times = state.ReadOutputAs<DateTime[]>()!;
        DateTime fireAt = times[0], resumedAt = times[1];
        output.WriteLine($"start {startWall:O} fireAt {fireAt:O} orchestration resumed {resumedAt:O} activity ran {wallClockAfterTimer:O}");

        Assert.True(fireAt >= startWall, "the orchestration clock starts at or after the request");
        Assert.True(resumedAt >= fireAt, $"orchestration resumed at {resumedAt:O}, before the timer's due time {fireAt:O}");
        Assert.NotNull(wallClockAfterTimer);
        Assert.True(wallClockAfterTimer >= fireAt, $"work after the timer ran at {wallClockAfterTimer:O}, before its due time {fireAt:O}");

        // The history records the timer with its due time.
        var history = await app.Client.GetOrchestrationHistoryAsync(id);
        var fired = Assert.Single(history.OfType<TimerFiredEvent>());
        Assert.Equal(fireAt, fired.FireAt.ToUniversalTime());
        Assert.True(fired.Timestamp.ToUniversalTime() >= fireAt, $"TimerFired was recorded at {fired.Timestamp:O}, before {fireAt:O}");
    }

    [Fact]
    public async Task ExternalEvent_RaisedBeforeTheOrchestrationWaits_IsDelivered()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var activityStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Waiter", async (ctx, _) =>
            {
                await ctx.CallActivityAsync("Block", "");
                string value = await ctx.WaitForExternalEvent<string>("Approval");
                return "approved by " + value;
            })
            .AddActivityFunc<string>("Block", async (_, _) =>
            {
                activityStarted.TrySetResult();
                await gate.Task;
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "");
        await activityStarted.Task.WaitAsync(Waits.Default);

        // The orchestration is not waiting for the event yet: it waits for the activity.
        await app.Client.RaiseEventAsync(id, "Approval", "alice");
        gate.SetResult();

        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("approved by alice", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task ExternalEvent_RaisedWhileSuspended_IsDeliveredAfterResume()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Waiter", async (ctx, _) =>
                "got " + await ctx.WaitForExternalEvent<string>("Data")));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Waiter", "");
        await app.Client.WaitForInstanceStartAsync(id, new CancellationTokenSource(Waits.Default).Token);
        await app.Client.SuspendInstanceAsync(id, "hold on");
        await app.Client.StatusAsync(id, OrchestrationRuntimeStatus.Suspended);

        await app.Client.RaiseEventAsync(id, "Data", "payload");

        // Give the event time to reach the orchestration; it must not complete while suspended.
        try
        {
            await Waits.UntilAsync(async () => await app.Client.GetOrchestrationHistoryAsync(id),
                h => h.OfType<EventRaisedEvent>().Any(), "the event to be recorded", TimeSpan.FromSeconds(3));
        }
        catch (TimeoutException)
        {
            // A scheduler may also hold the event until the instance resumes.
        }

        var suspended = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true);
        Assert.Equal(OrchestrationRuntimeStatus.Suspended, suspended!.RuntimeStatus);
        Assert.Null(suspended.SerializedOutput);

        await app.Client.ResumeInstanceAsync(id, "go on");
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("got payload", state.ReadOutputAs<string>());
    }

    [Fact]
    public async Task ContinueAsNew_CounterLoop_ReturnsFinalValueAndKeepsOnlyTheLastExecution()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<int, int>("Counter", (ctx, n) =>
            {
                if (n < 10)
                {
                    ctx.ContinueAsNew(n + 1);
                    return Task.FromResult(-1);
                }

                return Task.FromResult(n);
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Counter", 0);
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal(10, state.ReadOutputAs<int>());
        Assert.Equal("10", state.SerializedInput);

        var history = await app.Client.GetOrchestrationHistoryAsync(id);
        var started = Assert.Single(history.OfType<ExecutionStartedEvent>());
        Assert.Equal("10", started.Input);
    }

    public sealed record Tally(int Generation, int Sum);

    [Fact]
    public async Task ContinueAsNew_NewExecutionId_AndUnprocessedEventsAreCarriedOver()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<Tally, Tally>("Adder", async (ctx, t) =>
            {
                if (t.Generation == 0) await ctx.CallActivityAsync("Block", "");
                int value = await ctx.WaitForExternalEvent<int>("Add");
                var next = new Tally(t.Generation + 1, t.Sum + value);
                if (next.Generation < 3)
                {
                    ctx.ContinueAsNew(next, preserveUnprocessedEvents: true);
                }

                return next;
            })
            .AddActivityFunc<string>("Block", async (_, _) =>
            {
                blocked.TrySetResult();
                await gate.Task;
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Adder", new Tally(0, 0));
        await blocked.Task.WaitAsync(Waits.Default);
        string firstExecution = (await scheduler.Raw(app.Hub).GetInstanceAsync(
            new Microsoft.DurableTask.Protobuf.GetInstanceRequest { InstanceId = id })).OrchestrationState.ExecutionId;
        Assert.False(string.IsNullOrEmpty(firstExecution), "GetInstance reports the execution id");

        // All three events arrive while the first generation waits for its activity; two of them
        // are still unprocessed when it continues as new and must be carried over.
        await app.Client.RaiseEventAsync(id, "Add", 1);
        await app.Client.RaiseEventAsync(id, "Add", 10);
        await app.Client.RaiseEventAsync(id, "Add", 100);
        gate.SetResult();

        var state = await app.Client.CompletedAsync(id);
        Assert.Equal(new Tally(3, 111), state.ReadOutputAs<Tally>());

        string lastExecution = (await scheduler.Raw(app.Hub).GetInstanceAsync(
            new Microsoft.DurableTask.Protobuf.GetInstanceRequest { InstanceId = id })).OrchestrationState.ExecutionId;
        Assert.NotEqual(firstExecution, lastExecution);
        var started = Assert.Single((await app.Client.GetOrchestrationHistoryAsync(id)).OfType<ExecutionStartedEvent>());
        Assert.Equal(lastExecution, started.OrchestrationInstance.ExecutionId);
    }

    [Fact]
    public async Task CustomStatus_IsVisibleWhileRunningAndAfterCompletion()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Status", async (ctx, _) =>
            {
                ctx.SetCustomStatus(new { step = 1, note = "waiting" });
                await ctx.WaitForExternalEvent<string>("Next");
                ctx.SetCustomStatus("done");
                return "ok";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Status", "");
        var running = await app.Client.StateAsync(id, s => s.SerializedCustomStatus is not null, "to report a custom status");
        Assert.Equal(OrchestrationRuntimeStatus.Running, running.RuntimeStatus);
        Assert.Equal("{\"step\":1,\"note\":\"waiting\"}", running.SerializedCustomStatus);

        await app.Client.RaiseEventAsync(id, "Next", "");
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("done", state.ReadCustomStatusAs<string>());
    }

    [Fact]
    public async Task Tags_RoundTripOnStart()
    {
        await using var app = await StartAsync(r => r.AddOrchestratorFunc<string, string>("Tagged", (_, s) => Task.FromResult(s)));

        var tags = new Dictionary<string, string> { ["team"] = "payments", ["priority"] = "high", ["empty"] = "" };
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Tagged", "x", new StartOrchestrationOptions { Tags = tags });
        await app.Client.CompletedAsync(id);

        var state = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: false);
        Assert.NotNull(state);
        Assert.Equal(tags.OrderBy(kv => kv.Key), state.Tags.OrderBy(kv => kv.Key));
    }

    [Fact]
    public async Task RetryPolicy_FlakyActivitySucceedsAfterRetries()
    {
        int attempts = 0;
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Retry", async (ctx, _) =>
                await ctx.CallActivityAsync<string>("Flaky", "",
                    TaskOptions.FromRetryPolicy(new RetryPolicy(5, TimeSpan.FromMilliseconds(200), backoffCoefficient: 1.0))))
            .AddActivityFunc<string, string>("Flaky", (_, _) =>
            {
                int attempt = Interlocked.Increment(ref attempts);
                if (attempt < 3) throw new InvalidOperationException($"attempt {attempt} fails");
                return $"succeeded on attempt {attempt}";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Retry", "");
        var state = await app.Client.CompletedAsync(id);
        Assert.Equal("succeeded on attempt 3", state.ReadOutputAs<string>());
        Assert.Equal(3, attempts);

        var history = await app.Client.GetOrchestrationHistoryAsync(id);
        Assert.Equal(2, history.OfType<TaskFailedEvent>().Count());
        Assert.Single(history.OfType<TaskCompletedEvent>());
    }
    [Fact]
    public async Task SendEvent_BetweenOrchestrations_IsDelivered()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Receiver", async (ctx, _) => "received " + await ctx.WaitForExternalEvent<string>("Ping"))
            .AddOrchestratorFunc<string, string>("Sender", (ctx, target) =>
            {
                ctx.SendEvent(target, "Ping", "from " + ctx.InstanceId);
                return Task.FromResult("sent");
            }));

        string receiver = await app.Client.ScheduleNewOrchestrationInstanceAsync("Receiver", "");
        await app.Client.WaitForInstanceStartAsync(receiver, new CancellationTokenSource(Waits.Default).Token);
        string sender = await app.Client.ScheduleNewOrchestrationInstanceAsync("Sender", receiver);

        Assert.Equal("sent", (await app.Client.CompletedAsync(sender)).ReadOutputAs<string>());
        Assert.Equal("received from " + sender, (await app.Client.CompletedAsync(receiver)).ReadOutputAs<string>());
    }

    [Fact]
    public async Task SubOrchestrationTags_ReachTheChild()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Parent", async (ctx, _) =>
                await ctx.CallSubOrchestratorAsync<string>("Child", "c", new SubOrchestrationOptions
                {
                    InstanceId = ctx.InstanceId + "-child",
                    Tags = new Dictionary<string, string> { ["origin"] = "parent", ["tier"] = "2" },
                }))
            .AddOrchestratorFunc<string, string>("Child", (_, s) => Task.FromResult(s)));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", "");
        await app.Client.CompletedAsync(id);
        var child = await app.Client.GetInstanceAsync(id + "-child");
        Assert.NotNull(child);
        Assert.Equal("parent", child.Tags["origin"]);
        Assert.Equal("2", child.Tags["tier"]);
    }
    [Fact]
    public async Task ExternalEvents_WithTheSameName_AreDeliveredInOrder()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<int, List<int>>("Collector", async (ctx, n) =>
            {
                var values = new List<int>();
                values.Add(await ctx.WaitForExternalEvent<int>("N"));
                await ctx.CallActivityAsync("Block", "");
                for (int i = 1; i < n; i++) values.Add(await ctx.WaitForExternalEvent<int>("N"));
                return values;
            })
            .AddActivityFunc<string>("Block", async (_, _) =>
            {
                blocked.TrySetResult();
                await gate.Task;
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Collector", 8);
        await app.Client.WaitForInstanceStartAsync(id, new CancellationTokenSource(Waits.Default).Token);
        for (int i = 1; i <= 8; i++) await app.Client.RaiseEventAsync(id, "N", i);
        await blocked.Task.WaitAsync(Waits.Default);
        gate.SetResult();

        Assert.Equal(Enumerable.Range(1, 8), (await app.Client.CompletedAsync(id)).ReadOutputAs<List<int>>()!);
    }

    [Fact]
    public async Task SubOrchestrationFanOut_FiftyChildren()
    {
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<int, int>("Parent", async (ctx, n) =>
                (await Task.WhenAll(Enumerable.Range(1, n).Select(i => ctx.CallSubOrchestratorAsync<int>("Child", i)))).Sum())
            .AddOrchestratorFunc<int, int>("Child", async (ctx, i) => await ctx.CallActivityAsync<int>("Triple", i))
            .AddActivityFunc<int, int>("Triple", (_, i) => 3 * i));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", 50);
        Assert.Equal(3 * 50 * 51 / 2, (await app.Client.CompletedAsync(id)).ReadOutputAs<int>());
    }

    [Fact]
    public async Task ActivityCompletingWhileSuspended_IsProcessedAfterResume()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await StartAsync(r => r
            .AddOrchestratorFunc<string, string>("Job", async (ctx, _) => "result: " + await ctx.CallActivityAsync<string>("Slow", ""))
            .AddActivityFunc<string, string>("Slow", async (_, _) =>
            {
                running.TrySetResult();
                await gate.Task;
                return "slow work";
            }));

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Job", "");
        await running.Task.WaitAsync(Waits.Default);
        await app.Client.SuspendInstanceAsync(id, "pause");
        await app.Client.StatusAsync(id, OrchestrationRuntimeStatus.Suspended);
        gate.SetResult();

        try
        {
            await Waits.UntilAsync(async () => await app.Client.GetOrchestrationHistoryAsync(id),
                h => h.OfType<TaskCompletedEvent>().Any(), "the activity result to be recorded", TimeSpan.FromSeconds(3));
        }
        catch (TimeoutException)
        {
            // A scheduler may also hold the result until the instance resumes.
        }

        var suspended = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true);
        Assert.Equal(OrchestrationRuntimeStatus.Suspended, suspended!.RuntimeStatus);
        Assert.Null(suspended.SerializedOutput);

        await app.Client.ResumeInstanceAsync(id);
        Assert.Equal("result: slow work", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
    }
}
