using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using Microsoft.DurableTask.Entities;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Entities;

public sealed class Counter : TaskEntity<int>
{
    public void Add(int amount) => State += amount;

    public int Get() => State;

    public void Set(int value) => State = value;

    public void Fail() => throw new InvalidOperationException("the counter refuses");

    /// <summary>Signals another counter, and starts an orchestration, as entity actions.</summary>
    public void Forward(string key)
    {
        Context.SignalEntity(new EntityInstanceId(nameof(Counter), key), nameof(Add), State);
        Context.ScheduleNewOrchestration(nameof(EntityTests.Noop), input: key, options: new StartOrchestrationOptions($"started-by-{key}") { Tags = new Dictionary<string, string> { ["by"] = key } });
    }
}

public sealed class Journal : TaskEntity<string>
{
    protected override string InitializeState(TaskEntityOperation entityOperation) => "";

    public void Append(string text) => State = (State ?? "") + text;

    public string Get() => State ?? "";
}

/// <summary>Durable entities against the real .NET SDK, in both encodings of entity messages.</summary>
public sealed class EntityTests(EntityTestHost scheduler) : IClassFixture<EntityTestHost>
{
    static readonly EntityInstanceId A = new(nameof(Counter), "a");
    static readonly EntityInstanceId B = new(nameof(Counter), "b");

    public static Task<string> Noop(Microsoft.DurableTask.TaskOrchestrationContext context, string input) => Task.FromResult(input);

    static void Register(DurableTaskRegistry r)
    {
        r.AddEntity<Counter>();
        r.AddEntity<Journal>();
        r.AddOrchestratorFunc<string, string>(nameof(Noop), Noop);
        r.AddOrchestratorFunc<string, int>("CallAddAndGet", async (ctx, key) =>
        {
            var id = new EntityInstanceId(nameof(Counter), key);
            await ctx.Entities.CallEntityAsync(id, nameof(Counter.Add), 5);
            await ctx.Entities.CallEntityAsync(id, nameof(Counter.Add), 7);
            return await ctx.Entities.CallEntityAsync<int>(id, nameof(Counter.Get));
        });
        r.AddOrchestratorFunc<string, string>("CallFail", async (ctx, key) =>
        {
            try
            {
                await ctx.Entities.CallEntityAsync(new EntityInstanceId(nameof(Counter), key), nameof(Counter.Fail));
                return "no failure";
            }
            catch (EntityOperationFailedException ex)
            {
                return ex.FailureDetails.ErrorMessage;
            }
        });
        r.AddOrchestratorFunc<string>("SignalFromOrchestration", async ctx =>
        {
            await ctx.Entities.SignalEntityAsync(new EntityInstanceId(nameof(Counter), "signalled"), nameof(Counter.Add), 3);
            return "sent";
        });
        // Read-modify-write on two counters; without mutual exclusion concurrent runs lose updates.
        r.AddOrchestratorFunc<string>("Transfer", async ctx =>
        {
            await using (await ctx.Entities.LockEntitiesAsync(A, B))
            {
                int a = await ctx.Entities.CallEntityAsync<int>(A, nameof(Counter.Get));
                await ctx.Entities.CallEntityAsync(A, nameof(Counter.Set), a + 1);
                int b = await ctx.Entities.CallEntityAsync<int>(B, nameof(Counter.Get));
                await ctx.Entities.CallEntityAsync(B, nameof(Counter.Set), b + 1);
            }

            return "done";
        });
        r.AddOrchestratorFunc<string, string>("LockAndFail", async (ctx, key) =>
        {
            await ctx.Entities.LockEntitiesAsync(new EntityInstanceId(nameof(Counter), key));
            throw new InvalidOperationException("failed inside the critical section");
        });
        r.AddOrchestratorFunc<string, string>("LockAndWait", async (ctx, key) =>
        {
            await using (await ctx.Entities.LockEntitiesAsync(new EntityInstanceId(nameof(Counter), key)))
            {
                await ctx.WaitForExternalEvent<string>("never");
            }

            return "released";
        });
        r.AddOrchestratorFunc<string, int>("LockAndIncrement", async (ctx, key) =>
        {
            var id = new EntityInstanceId(nameof(Counter), key);
            await using (await ctx.Entities.LockEntitiesAsync(id))
            {
                await ctx.Entities.CallEntityAsync(id, nameof(Counter.Add), 1);
                return await ctx.Entities.CallEntityAsync<int>(id, nameof(Counter.Get));
            }
        });
    }

    static async Task<T> Eventually<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var value = await read();
            if (done(value) || DateTime.UtcNow > deadline) return value;
            await Task.Delay(50);
        }
    }

    static async Task<int?> CounterValue(DurableTaskClient client, EntityInstanceId id)
    {
        var entity = await client.Entities.GetEntityAsync<int>(id, includeState: true);
        return entity?.State;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Counter_signalled_1000_times_by_10_clients_ends_at_1000(bool explicitEvents)
    {
        var hub = SchedulerFixture.NewHub("e");
        await using var worker = await scheduler.StartWorkerAsync(hub, explicitEvents, Register);
        var clients = Enumerable.Range(0, 10).Select(_ => scheduler.StartClient(hub)).ToList();
        var id = new EntityInstanceId(nameof(Counter), "total");
        await Task.WhenAll(clients.Select(async c =>
        {
            for (int i = 0; i < 100; i++) await c.Entities.SignalEntityAsync(id, nameof(Counter.Add), 1);
        }));

        var value = await Eventually(() => CounterValue(worker.Client, id), v => v == 1000);
        Assert.Equal(1000, value);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Orchestration_calls_entity_and_gets_result(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var result = await worker.RunAsync("CallAddAndGet", "k1");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, result.RuntimeStatus);
        Assert.Equal(12, result.ReadOutputAs<int>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Orchestration_call_failure_reaches_the_caller(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var result = await worker.RunAsync("CallFail", "k2");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, result.RuntimeStatus);
        Assert.Contains("the counter refuses", result.ReadOutputAs<string>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Orchestration_signal_reaches_entity(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var result = await worker.RunAsync("SignalFromOrchestration");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, result.RuntimeStatus);
        var value = await Eventually(() => CounterValue(worker.Client, new EntityInstanceId(nameof(Counter), "signalled")), v => v == 3);
        Assert.Equal(3, value);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Critical_section_over_two_entities_loses_no_update_under_contention(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var ids = new List<string>();
        for (int i = 0; i < 20; i++) ids.Add(await worker.Client.ScheduleNewOrchestrationInstanceAsync("Transfer"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        foreach (var id in ids)
        {
            var done = await worker.Client.WaitForInstanceCompletionAsync(id, true, cts.Token);
            Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        }

        Assert.Equal(20, await CounterValue(worker.Client, A));
        Assert.Equal(20, await CounterValue(worker.Client, B));
        var a = await worker.Client.Entities.GetEntityAsync(A, includeState: false);
        Assert.Null(a!.LockedBy);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lock_is_released_when_the_holder_fails(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var failed = await worker.RunAsync("LockAndFail", "fail-lock");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
        var next = await worker.RunAsync("LockAndIncrement", "fail-lock", TimeSpan.FromSeconds(30));
        Assert.Equal(OrchestrationRuntimeStatus.Completed, next.RuntimeStatus);
        Assert.Equal(1, next.ReadOutputAs<int>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lock_is_released_when_the_holder_is_terminated(bool explicitEvents)
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), explicitEvents, Register);
        var id = new EntityInstanceId(nameof(Counter), "term-lock");
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Counter.Set), 0);
        await Eventually(() => worker.Client.Entities.GetEntityAsync(id), e => e is not null);
        var holder = await worker.Client.ScheduleNewOrchestrationInstanceAsync("LockAndWait", "term-lock");
        Assert.Equal(holder, await Eventually(async () => (await worker.Client.Entities.GetEntityAsync(id, false))?.LockedBy, v => v == holder));
        var waiter = await worker.Client.ScheduleNewOrchestrationInstanceAsync("LockAndIncrement", "term-lock");
        await Task.Delay(300);
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await worker.Client.GetInstanceAsync(waiter))!.RuntimeStatus);

        await worker.Client.TerminateInstanceAsync(holder, "stop");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var next = await worker.Client.WaitForInstanceCompletionAsync(waiter, true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, next.RuntimeStatus);
        Assert.Equal(1, next.ReadOutputAs<int>());
    }

    [Fact]
    public async Task Emergency_termination_leaves_an_orchestration_holding_entity_locks_alone()
    {
        string hub = SchedulerFixture.NewHub("e");
        await using var worker = await scheduler.StartWorkerAsync(hub, true, Register);
        var id = new EntityInstanceId(nameof(Counter), "skip-lock");
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Counter.Set), 0);
        await Eventually(() => worker.Client.Entities.GetEntityAsync(id), e => e is not null);
        var holder = await worker.Client.ScheduleNewOrchestrationInstanceAsync("LockAndWait", "skip-lock");
        Assert.Equal(holder, await Eventually(async () => (await worker.Client.Entities.GetEntityAsync(id, false))?.LockedBy, v => v == holder));

        var raw = scheduler.Raw(hub);
        var response = await raw.SkipGracefulOrchestrationTerminationsAsync(new P.SkipGracefulOrchestrationTerminationsRequest
        {
            InstanceBatch = new P.InstanceBatch { InstanceIds = { holder, id.ToString() } },
        });

        // The holder would leave the entity locked, and an entity is no orchestration: both are left alone.
        Assert.Equal([holder, id.ToString()], response.UnterminatedInstanceIds);
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await worker.Client.GetInstanceAsync(holder))!.RuntimeStatus);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lock_is_not_leaked_when_the_worker_dies_mid_section(bool explicitEvents)
    {
        var hub = SchedulerFixture.NewHub("e");
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = await scheduler.StartWorkerAsync(hub, explicitEvents, r =>
        {
            Register(r);
            r.AddOrchestratorFunc<string, string>("LockAndWork", async (ctx, key) =>
            {
                await using (await ctx.Entities.LockEntitiesAsync(new EntityInstanceId(nameof(Counter), key)))
                {
                    await ctx.CallActivityAsync("Work");
                }

                return "finished";
            });
            // The first worker never finishes the activity: it dies while the lock is held.
            r.AddActivityFunc("Work", async _ =>
            {
                entered.TrySetResult();
                await Task.Delay(Timeout.Infinite);
            });
        });
        var holder = await first.Client.ScheduleNewOrchestrationInstanceAsync("LockAndWork", "crash-lock");
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        first.Kill();

        await using var second = await scheduler.StartWorkerAsync(hub, explicitEvents, r =>
        {
            Register(r);
            r.AddOrchestratorFunc<string, string>("LockAndWork", async (ctx, key) =>
            {
                await using (await ctx.Entities.LockEntitiesAsync(new EntityInstanceId(nameof(Counter), key)))
                {
                    await ctx.CallActivityAsync("Work");
                }

                return "finished";
            });
            r.AddActivityFunc("Work", _ => Task.CompletedTask);
        });
        var waiter = await second.Client.ScheduleNewOrchestrationInstanceAsync("LockAndIncrement", "crash-lock");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var held = await second.Client.WaitForInstanceCompletionAsync(holder, true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, held.RuntimeStatus);
        var next = await second.Client.WaitForInstanceCompletionAsync(waiter, true, cts.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, next.RuntimeStatus);
        Assert.Equal(1, next.ReadOutputAs<int>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Entity_response_to_an_execution_that_continued_as_new_is_dropped(bool explicitEvents)
    {
        var hub = SchedulerFixture.NewHub("e");
        await using var worker = await scheduler.StartWorkerAsync(hub, explicitEvents, r =>
        {
            Register(r);
            r.AddOrchestratorFunc<int, string>("CallThenContinue", async (ctx, generation) =>
            {
                if (generation == 0)
                {
                    // The call's answer belongs to this execution; it must not reach the next one.
                    _ = ctx.Entities.CallEntityAsync<int>(new EntityInstanceId(nameof(Counter), "stale"), nameof(Counter.Get));
                    ctx.ContinueAsNew(1);
                    return "continued";
                }

                await ctx.CreateTimer(TimeSpan.FromSeconds(1), CancellationToken.None);
                return "second execution";
            });
        });

        var done = await worker.RunAsync("CallThenContinue", 0);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal("second execution", done.ReadOutputAs<string>());

        // The entity ran the call (its answer was sent) ...
        var entity = await Eventually(() => worker.Client.Entities.GetEntityAsync(new EntityInstanceId(nameof(Counter), "stale")), e => e is not null);
        Assert.NotNull(entity);

        // ... and the second execution's history holds no answer to it.
        var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(scheduler.Invoker(hub));
        using var stream = raw.StreamInstanceHistory(new P.StreamInstanceHistoryRequest { InstanceId = done.InstanceId });
        var events = new List<P.HistoryEvent>();
        while (await stream.ResponseStream.MoveNext(CancellationToken.None)) events.AddRange(stream.ResponseStream.Current.Events);
        Assert.Contains(events, e => e.EventTypeCase == P.HistoryEvent.EventTypeOneofCase.TimerFired);
        Assert.DoesNotContain(events, e => e.EventTypeCase is P.HistoryEvent.EventTypeOneofCase.EntityOperationCompleted
            or P.HistoryEvent.EventTypeOneofCase.EntityOperationFailed or P.HistoryEvent.EventTypeOneofCase.EventRaised);
    }

    [Fact]
    public async Task Entity_actions_signal_entities_and_start_orchestrations()
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), true, Register);
        var source = new EntityInstanceId(nameof(Counter), "source");
        await worker.Client.Entities.SignalEntityAsync(source, nameof(Counter.Set), 41);
        await worker.Client.Entities.SignalEntityAsync(source, nameof(Counter.Forward), "target");
        var value = await Eventually(() => CounterValue(worker.Client, new EntityInstanceId(nameof(Counter), "target")), v => v == 41);
        Assert.Equal(41, value);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var started = await Eventually(() => worker.Client.GetInstanceAsync("started-by-target"), v => v is not null);
        Assert.NotNull(started);
        var done = await worker.Client.WaitForInstanceCompletionAsync("started-by-target", true, cts.Token);
        Assert.Equal("target", done.ReadOutputAs<string>());
        Assert.Equal("target", done.Tags["by"]);
    }

    [Fact]
    public async Task Delete_operation_removes_the_entity()
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), true, Register);
        var id = new EntityInstanceId(nameof(Counter), "deleted");
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Counter.Add), 2);
        Assert.Equal(2, await Eventually(() => CounterValue(worker.Client, id), v => v == 2));
        await worker.Client.Entities.SignalEntityAsync(id, "delete");
        var gone = await Eventually(() => worker.Client.Entities.GetEntityAsync(id), e => e is null);
        Assert.Null(gone);
    }

    [Fact]
    public async Task Scheduled_signal_is_not_delivered_early()
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), true, Register);
        var id = new EntityInstanceId(nameof(Counter), "later");
        var due = DateTimeOffset.UtcNow.AddSeconds(2);
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Counter.Add), 1, new SignalEntityOptions { SignalTime = due });
        await Task.Delay(1000);
        Assert.Null(await worker.Client.Entities.GetEntityAsync(id));
        var entity = await Eventually(() => worker.Client.Entities.GetEntityAsync<int>(id), e => e is not null);
        Assert.NotNull(entity);
        Assert.True(entity!.LastModifiedTime >= due, $"applied at {entity.LastModifiedTime:O}, due {due:O}");
    }

    [Fact]
    public async Task Signals_with_the_same_request_id_are_applied_once()
    {
        var hub = SchedulerFixture.NewHub("e");
        await using var worker = await scheduler.StartWorkerAsync(hub, true, Register);
        var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(scheduler.Invoker(hub));
        var requestId = Guid.NewGuid().ToString();
        for (int i = 0; i < 3; i++)
        {
            await raw.SignalEntityAsync(new P.SignalEntityRequest { InstanceId = "@counter@dedupe", Name = "Add", Input = "1", RequestId = requestId });
        }

        await raw.SignalEntityAsync(new P.SignalEntityRequest { InstanceId = "@counter@dedupe", Name = "Add", Input = "10", RequestId = Guid.NewGuid().ToString() });
        var id = new EntityInstanceId(nameof(Counter), "dedupe");
        Assert.Equal(11, await Eventually(() => CounterValue(worker.Client, id), v => v == 11));
        await Task.Delay(300);
        Assert.Equal(11, await CounterValue(worker.Client, id));
    }

    [Fact]
    public async Task Malformed_entity_id_is_invalid_argument()
    {
        var hub = SchedulerFixture.NewHub("e");
        var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(scheduler.Invoker(hub));
        var signal = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.SignalEntityAsync(new P.SignalEntityRequest { InstanceId = "not-an-entity", Name = "Add", RequestId = Guid.NewGuid().ToString() }));
        Assert.Equal(StatusCode.InvalidArgument, signal.StatusCode);
        Assert.Contains("@name@key", signal.Status.Detail);
        var get = await Assert.ThrowsAsync<RpcException>(async () => await raw.GetEntityAsync(new P.GetEntityRequest { InstanceId = "@@key" }));
        Assert.Equal(StatusCode.InvalidArgument, get.StatusCode);
    }

    [Fact]
    public async Task Queries_page_through_entities_and_clean_storage_counts()
    {
        var hub = SchedulerFixture.NewHub("e");
        await using var worker = await scheduler.StartWorkerAsync(hub, true, Register);
        for (int i = 0; i < 25; i++) await worker.Client.Entities.SignalEntityAsync(new EntityInstanceId(nameof(Counter), $"q{i:D2}"), nameof(Counter.Add), i + 1);
        await worker.Client.Entities.SignalEntityAsync(new EntityInstanceId(nameof(Journal), "j"), nameof(Journal.Append), "x");
        await Eventually(() => CounterValue(worker.Client, new EntityInstanceId(nameof(Counter), "q24")), v => v == 25);
        await Eventually(async () => (await worker.Client.Entities.GetEntityAsync(new EntityInstanceId(nameof(Journal), "j"))) is not null, v => v);

        var seen = new List<string>();
        int pages = 0;
        await foreach (var page in worker.Client.Entities.GetAllEntitiesAsync<int>(new EntityQuery { InstanceIdStartsWith = "Counter", PageSize = 10, IncludeState = true }).AsPages())
        {
            pages++;
            foreach (var e in page.Values)
            {
                seen.Add(e.Id.Key);
                Assert.Equal(int.Parse(e.Id.Key[1..]) + 1, e.State);
            }
        }

        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"q{i:D2}"), seen);
        Assert.True(pages >= 3, $"expected paging, got {pages} page(s)");

        // An orchestration that ends while holding a lock leaves an orphaned lock only if nothing released it;
        // a lock request left in a queue by a terminated orchestration must not lock anything either.
        var holder = await worker.Client.ScheduleNewOrchestrationInstanceAsync("LockAndWait", "q00");
        Assert.Equal(holder, await Eventually(async () => (await worker.Client.Entities.GetEntityAsync(new EntityInstanceId(nameof(Counter), "q00"), false))?.LockedBy, v => v == holder));
        await worker.Client.Entities.SignalEntityAsync(new EntityInstanceId(nameof(Counter), "q01"), "delete");
        await Eventually(() => worker.Client.Entities.GetEntityAsync(new EntityInstanceId(nameof(Counter), "q01")), e => e is null);
        await worker.Client.TerminateInstanceAsync(holder);
        await worker.Client.WaitForInstanceCompletionAsync(holder);
        var locked = await worker.Client.Entities.GetEntityAsync(new EntityInstanceId(nameof(Counter), "q00"), false);
        Assert.Null(locked!.LockedBy);

        var cleaned = await worker.Client.Entities.CleanEntityStorageAsync(new CleanEntityStorageRequest { RemoveEmptyEntities = true, ReleaseOrphanedLocks = true });
        Assert.Equal(0, cleaned.OrphanedLocksReleased);
        Assert.True(cleaned.EmptyEntitiesRemoved >= 0);
    }

    [Fact]
    public async Task Entity_state_over_the_payload_limit_fails_the_operation_and_keeps_the_state()
    {
        await using var worker = await scheduler.StartWorkerAsync(SchedulerFixture.NewHub("e"), true, Register);
        var id = new EntityInstanceId(nameof(Journal), "big");
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Journal.Append), "start;");
        var first = await Eventually(async () => (await worker.Client.Entities.GetEntityAsync<string>(id))?.State, s => s == "start;");
        Assert.Equal("start;", first);

        // 600 KB twice: the second append would take the state past the 1 MiB limit.
        var chunk = new string('x', 600 * 1024);
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Journal.Append), chunk);
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Journal.Append), chunk);
        await worker.Client.Entities.SignalEntityAsync(id, nameof(Journal.Append), "end");
        var state = await Eventually(async () => (await worker.Client.Entities.GetEntityAsync<string>(id))?.State, s => s?.EndsWith("end") == true);
        Assert.Equal("start;" + chunk + "end", state);
    }
}
