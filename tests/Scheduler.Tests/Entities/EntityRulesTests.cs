using System.Text.Json;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Entities;

/// <summary>The entity rules on their own: hand-built messages in, the effects they have recorded by a fake hub.</summary>
public sealed class EntityRulesTests
{
    const string A = "@counter@a", B = "@counter@b", C = "@counter@c";

    /// <summary>Stands in for the task hub: keeps entities by id, orchestration statuses, and a log of every effect.</summary>
    sealed class FakeHub(params string[] running) : IEntityEffects
    {
        public readonly EntityRules Rules = new();
        public readonly Dictionary<string, Entity> Entities = new(StringComparer.Ordinal);
        public readonly Dictionary<string, OrchestrationStatus> Orchestrations = running.ToDictionary(id => id, _ => OrchestrationStatus.Running, StringComparer.Ordinal);
        public readonly List<string> Log = [];
        public readonly List<(string To, string? ExecutionId, HistoryEvent Message)> Delivered = [];
        public readonly List<OperationAction> Actions = [];
        public DateTime Now = new(2026, 1, 1, 12, 0, 0, DateTimeKind.Utc);
        readonly WorkerConnection _worker = new("worker", "hub", new GetWorkItemsRequest(), 10);

        public Entity Get(string id)
        {
            if (!Entities.TryGetValue(id, out var entity)) Entities.Add(id, entity = new Entity(id) { LastModified = Now });
            return entity;
        }

        public void Send(string entityId, EntityMessage message) => Rules.Arrive(Get(entityId), message, Now, this);

        public void End(string orchestrationId, OrchestrationStatus status)
        {
            Orchestrations[orchestrationId] = status;
            Rules.OwnerEnded(orchestrationId, Now, this);
        }

        /// <summary>Hands the entity's next batch to a worker, as the hub does, and returns it.</summary>
        public List<EntityMessage> Dispatch(string entityId)
        {
            var entity = Entities[entityId];
            Assert.True(EntityRules.CanRunBatch(entity), $"{entityId} has no batch to run");
            entity.Queued = false;
            var batch = EntityRules.TakeBatch(entity);
            entity.InFlight = new InFlightEntityBatch { Token = "e" + Log.Count, Worker = _worker, Entity = entity, Batch = batch };
            return batch;
        }

        /// <summary>The worker's result comes back: the batch is no longer in flight and the rules take it.</summary>
        public bool Complete(string entityId, EntityBatchResult result, int maxStateBytes = 1 << 20)
        {
            var entity = Entities[entityId];
            var batch = entity.InFlight!.Batch;
            entity.InFlight = null;
            return Rules.CompleteBatch(entity, batch, result, maxStateBytes, Now, this);
        }

        public bool IsRunning(string orchestrationId) =>
            Orchestrations.TryGetValue(orchestrationId, out var status) && status == OrchestrationStatus.Running;

        public Entity? Find(string entityId) => Entities.GetValueOrDefault(entityId);

        public TimeSpan RedeliveryDelay(int failedDeliveries) => TimeSpan.FromSeconds(10 * failedDeliveries);

        public void Changed(Entity entity) => Log.Add($"changed {entity.InstanceId}");

        public void ForwardLockRequest(string entityId, EntityMessage request)
        {
            var locked = string.Join(",", Entities.Values.Where(e => e.LockedBy is not null).Select(e => $"{e.InstanceId}={e.LockedBy}"));
            Log.Add($"forward {entityId} pos {request.Event.EntityLockRequested.Position} (locked: {locked})");
            Send(entityId, request);
        }

        public void LockGranted(string orchestrationId, HistoryEvent granted)
        {
            Log.Add($"granted {orchestrationId}");
            Delivered.Add((orchestrationId, null, granted));
        }

        public void Respond(string orchestrationId, string? executionId, HistoryEvent response)
        {
            Log.Add($"respond {orchestrationId}");
            Delivered.Add((orchestrationId, executionId, response));
        }

        public void RouteAction(OperationAction action)
        {
            Log.Add("action");
            Actions.Add(action);
        }

        public void Ready(Entity entity)
        {
            Log.Add($"ready {entity.InstanceId}");
            entity.Queued = true;
        }

        public void WakeAt(Entity entity, DateTime at) => Log.Add($"wake {entity.InstanceId} at {at:HH:mm:ss}");

        public void Idle(Entity entity) => Log.Add($"idle {entity.InstanceId}");

        public string[] Effects(string kind) => Log.Where(l => l.StartsWith(kind, StringComparison.Ordinal)).ToArray();
    }

    static EntityMessage Signal(string requestId, string operation = "add") => new()
    {
        Event = new HistoryEvent
        {
            EventId = -1,
            EntityOperationSignaled = new EntityOperationSignaledEvent { RequestId = requestId, Operation = operation, Input = "1" },
        },
    };

    static EntityMessage Call(string caller, string requestId, string operation = "get", bool legacy = false) => new()
    {
        Event = new HistoryEvent
        {
            EventId = -1,
            EntityOperationCalled = new EntityOperationCalledEvent
            {
                RequestId = requestId, Operation = operation, ParentInstanceId = caller, ParentExecutionId = caller + "-x1",
            },
        },
        ParentInstanceId = caller,
        ParentExecutionId = caller + "-x1",
        Legacy = legacy,
    };

    static EntityMessage LockRequest(string owner, string criticalSection, bool legacy, params string[] lockSet) => new()
    {
        Event = new HistoryEvent
        {
            EventId = -1,
            EntityLockRequested = new EntityLockRequestedEvent { CriticalSectionId = criticalSection, Position = 0, ParentInstanceId = owner, LockSet = { lockSet } },
        },
        ParentInstanceId = owner,
        Legacy = legacy,
    };

    static EntityMessage Unlock(string owner, string criticalSection) => new()
    {
        Event = new HistoryEvent
        {
            EventId = -1,
            EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = criticalSection, ParentInstanceId = owner },
        },
        ParentInstanceId = owner,
    };

    static EntityBatchResult Succeeded(string state, params string?[] outputs)
    {
        var result = new EntityBatchResult { EntityState = state };
        foreach (var output in outputs) result.Results.Add(new OperationResult { Success = new OperationResultSuccess { Result = output } });
        return result;
    }

    static string[] Ids(IEnumerable<EntityMessage> messages) => messages.Select(m => m.RequestId).ToArray();

    [Fact]
    public void Requests_run_in_the_order_they_arrived()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, Signal("s1"));
        hub.Send(A, Call("o1", "c2"));
        hub.Send(A, Signal("s3"));

        Assert.Equal(["s1", "c2", "s3"], Ids(hub.Dispatch(A)));
        Assert.Empty(hub.Entities[A].Queue);
    }

    [Fact]
    public void Operations_a_worker_did_not_run_go_back_ahead_of_later_requests()
    {
        var hub = new FakeHub();
        hub.Send(A, Signal("s1"));
        hub.Send(A, Signal("s2"));
        hub.Send(A, Signal("s3"));
        hub.Dispatch(A);
        hub.Send(A, Signal("s4"));

        Assert.True(hub.Complete(A, Succeeded("1", [null])));

        Assert.Equal("1", hub.Entities[A].State);
        Assert.Equal(["s2", "s3", "s4"], Ids(hub.Dispatch(A)));
    }

    [Fact]
    public void A_batch_stops_at_a_lock_request_which_is_handled_after_it()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, Signal("s1"));
        hub.Send(A, LockRequest("o1", "cs1", false, A));
        hub.Send(A, Signal("s2"));

        Assert.Equal(["s1"], Ids(hub.Dispatch(A)));
        Assert.Null(hub.Entities[A].LockedBy);

        hub.Complete(A, Succeeded("1", [null]));

        Assert.Equal("o1", hub.Entities[A].LockedBy);
        Assert.Equal(["granted o1"], hub.Effects("granted"));
        // The signal after the lock request waits for the lock holder.
        Assert.False(EntityRules.CanRunBatch(hub.Entities[A]));
    }

    [Fact]
    public void Only_one_batch_is_in_flight_per_entity()
    {
        var hub = new FakeHub();
        hub.Send(A, Signal("s1"));
        Assert.Equal(["ready @counter@a"], hub.Effects("ready"));
        hub.Dispatch(A);

        hub.Send(A, Signal("s2"));
        hub.Send(A, Signal("s3"));

        Assert.False(EntityRules.CanRunBatch(hub.Entities[A]));
        Assert.Single(hub.Effects("ready"));
        Assert.Equal(["s2", "s3"], Ids(hub.Entities[A].Queue));

        hub.Complete(A, Succeeded("1", [null]));

        Assert.Equal(2, hub.Effects("ready").Length);
        Assert.Equal(["s2", "s3"], Ids(hub.Dispatch(A)));
    }

    [Fact]
    public void A_lock_request_waits_for_the_batch_in_flight()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, Signal("s1"));
        hub.Dispatch(A);
        hub.Send(A, LockRequest("o1", "cs1", false, A));

        Assert.Null(hub.Entities[A].LockedBy);
        Assert.Empty(hub.Effects("granted"));

        hub.Complete(A, Succeeded("1", [null]));

        Assert.Equal("o1", hub.Entities[A].LockedBy);
        Assert.Equal(["granted o1"], hub.Effects("granted"));
    }

    [Fact]
    public void Locks_are_taken_in_lock_set_order_each_after_the_one_before()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(B, LockRequest("o2", "cs2", false, B));
        Assert.Equal("o2", hub.Entities[B].LockedBy);

        hub.Send(A, LockRequest("o1", "cs1", false, A, B, C));

        // A is held and the request went on to B, which o2 holds: there it waits, and C is not asked yet.
        Assert.Equal("o1", hub.Entities[A].LockedBy);
        Assert.Equal("o2", hub.Entities[B].LockedBy);
        Assert.False(hub.Entities.ContainsKey(C));
        Assert.Equal(["granted o2"], hub.Effects("granted"));
        Assert.Equal(["forward @counter@b pos 1 (locked: @counter@b=o2,@counter@a=o1)"], hub.Effects("forward"));

        hub.Send(B, Unlock("o2", "cs2"));

        Assert.Equal("o1", hub.Entities[B].LockedBy);
        Assert.Equal("o1", hub.Entities[C].LockedBy);
        Assert.Equal("cs1", hub.Entities[C].LockCriticalSectionId);
        Assert.Equal(
            ["forward @counter@b pos 1 (locked: @counter@b=o2,@counter@a=o1)", "forward @counter@c pos 2 (locked: @counter@b=o1,@counter@a=o1)", "granted o1"],
            hub.Log.Where(l => l.StartsWith("forward", StringComparison.Ordinal) || l == "granted o1"));
        var granted = hub.Delivered.Last();
        Assert.Equal("o1", granted.To);
        Assert.Equal(HistoryEvent.EventTypeOneofCase.EntityLockGranted, granted.Message.EventTypeCase);
        Assert.Equal("cs1", granted.Message.EntityLockGranted.CriticalSectionId);
        Assert.Equal([A, B, C], hub.Rules.LocksByOwner["o1"].Order(StringComparer.Ordinal));
        Assert.False(hub.Rules.LocksByOwner.ContainsKey("o2"));
    }

    [Fact]
    public void A_caller_in_the_older_encoding_is_told_of_its_lock_in_that_encoding()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, LockRequest("o1", "cs1", true, A, B));

        var (to, _, message) = Assert.Single(hub.Delivered);
        Assert.Equal("o1", to);
        Assert.Equal(HistoryEvent.EventTypeOneofCase.EventRaised, message.EventTypeCase);
        Assert.Equal("cs1", message.EventRaised.Name);
        Assert.Equal(LegacyEntityCodec.LockGrantedResult, JsonDocument.Parse(message.EventRaised.Input).RootElement.GetProperty("result").GetString());
        Assert.Equal("o1", hub.Entities[B].LockedBy);
    }

    [Fact]
    public void While_locked_the_holders_calls_run_and_other_callers_wait()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(A, LockRequest("o1", "cs1", false, A));
        hub.Send(A, Signal("s1"));
        hub.Send(A, Call("o2", "c2"));
        hub.Send(A, Call("o1", "c3"));
        hub.Send(A, Signal("s4"));

        Assert.Equal(["c3"], Ids(hub.Dispatch(A)));
        hub.Complete(A, Succeeded("5", "5"));

        var (to, executionId, response) = hub.Delivered.Last();
        Assert.Equal(("o1", "o1-x1"), (to, executionId));
        Assert.Equal("c3", response.EntityOperationCompleted.RequestId);
        Assert.Equal("5", response.EntityOperationCompleted.Output);
        Assert.False(EntityRules.CanRunBatch(hub.Entities[A]));
        Assert.Equal(["s1", "c2", "s4"], Ids(hub.Entities[A].Queue));

        hub.Send(A, Unlock("o1", "cs1"));

        Assert.Null(hub.Entities[A].LockedBy);
        Assert.Null(hub.Entities[A].LockCriticalSectionId);
        Assert.Empty(hub.Rules.LocksByOwner);
        Assert.Equal(["s1", "c2", "s4"], Ids(hub.Dispatch(A)));
    }

    [Fact]
    public void An_unlock_from_another_orchestration_does_not_release_the_lock()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(A, LockRequest("o1", "cs1", false, A));
        hub.Send(A, Unlock("o2", "cs2"));

        Assert.Equal("o1", hub.Entities[A].LockedBy);
        // It waits behind the lock, as any request of another caller does.
        Assert.Equal(["cs2"], Ids(hub.Entities[A].Queue));
    }

    [Theory]
    [InlineData(OrchestrationStatus.Completed)]
    [InlineData(OrchestrationStatus.Failed)]
    [InlineData(OrchestrationStatus.Terminated)]
    public void Locks_are_released_when_their_orchestration_ends(OrchestrationStatus end)
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(A, LockRequest("o1", "cs1", false, A, B));
        hub.Send(B, Signal("s1"));
        hub.Send(A, Call("o2", "c1"));

        hub.End("o1", end);

        Assert.Null(hub.Entities[A].LockedBy);
        Assert.Null(hub.Entities[B].LockedBy);
        Assert.Empty(hub.Rules.LocksByOwner);
        // What waited behind the locks runs now.
        Assert.Equal(["c1"], Ids(hub.Dispatch(A)));
        Assert.Equal(["s1"], Ids(hub.Dispatch(B)));
    }

    [Fact]
    public void A_lock_request_of_an_ended_orchestration_locks_nothing()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(B, LockRequest("o2", "cs2", false, B));
        hub.Send(A, LockRequest("o1", "cs1", false, A, B, C));
        Assert.Equal("o1", hub.Entities[A].LockedBy);

        // o1 ends while its request waits at B.
        hub.End("o1", OrchestrationStatus.Terminated);
        hub.Send(B, Unlock("o2", "cs2"));

        Assert.Null(hub.Entities[A].LockedBy);
        Assert.Null(hub.Entities[B].LockedBy);
        Assert.False(hub.Entities.ContainsKey(C));
        Assert.DoesNotContain("granted o1", hub.Log);
        Assert.Empty(hub.Rules.LocksByOwner);
    }

    [Fact]
    public void An_orphaned_lock_is_released_and_a_held_one_is_not()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(A, LockRequest("o1", "cs1", false, A));
        hub.Send(B, LockRequest("o2", "cs2", false, B));
        hub.Orchestrations["o1"] = OrchestrationStatus.Failed;

        Assert.True(hub.Rules.ReleaseOrphanedLock(hub.Entities[A], hub.Now, hub));
        Assert.False(hub.Rules.ReleaseOrphanedLock(hub.Entities[B], hub.Now, hub));

        Assert.Null(hub.Entities[A].LockedBy);
        Assert.Equal("o2", hub.Entities[B].LockedBy);
        Assert.Equal(["o2"], hub.Rules.LocksByOwner.Keys);
    }

    [Fact]
    public void A_batch_the_worker_could_not_run_is_retried_later_unchanged()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, Call("o1", "c1"));
        hub.Send(A, Signal("s2"));
        hub.Dispatch(A);
        hub.Send(A, Signal("s3"));
        hub.Log.Clear();

        var failed = Succeeded("99", "1", "2");
        failed.FailureDetails = new TaskFailureDetails { ErrorType = "WorkerError", ErrorMessage = "no such entity" };
        Assert.False(hub.Complete(A, failed));

        var entity = hub.Entities[A];
        Assert.Null(entity.State);
        Assert.Equal(1, entity.FailedDeliveries);
        Assert.Equal(hub.Now.AddSeconds(10), entity.NotBefore);
        Assert.Equal(["wake @counter@a at 12:00:10"], hub.Log);
        Assert.Empty(hub.Delivered);
        Assert.Equal(["c1", "s2", "s3"], Ids(entity.Queue));

        // A second failure waits longer; a success then resets the count.
        hub.Now = entity.NotBefore;
        hub.Rules.Process(entity, hub.Now, hub);
        hub.Dispatch(A);
        hub.Complete(A, failed);
        Assert.Equal(hub.Now.AddSeconds(20), entity.NotBefore);
        hub.Now = entity.NotBefore;
        hub.Rules.Process(entity, hub.Now, hub);
        hub.Dispatch(A);
        Assert.True(hub.Complete(A, Succeeded("3", "1", null, null)));
        Assert.Equal(0, entity.FailedDeliveries);
        Assert.Equal("3", entity.State);
    }

    [Fact]
    public void A_batch_whose_worker_went_away_goes_back_ahead_of_later_requests_and_waits()
    {
        var hub = new FakeHub();
        hub.Send(A, Signal("s1"));
        hub.Send(A, Signal("s2"));
        var batch = hub.Dispatch(A);
        hub.Send(A, Signal("s3"));
        var entity = hub.Entities[A];
        entity.InFlight = null;
        hub.Log.Clear();

        hub.Rules.BatchNotRun(entity, batch, hub.Now, hub);

        Assert.Equal(["s1", "s2", "s3"], Ids(entity.Queue));
        Assert.Equal(1, entity.FailedDeliveries);
        Assert.Equal(["wake @counter@a at 12:00:10"], hub.Log);
    }

    [Fact]
    public void A_failed_operation_is_answered_with_its_failure_and_the_batch_goes_on()
    {
        var hub = new FakeHub("o1", "o2");
        hub.Send(A, Call("o1", "c1", "fail"));
        hub.Send(A, Call("o2", "c2", "get", legacy: true));
        hub.Dispatch(A);

        var result = new EntityBatchResult { EntityState = "7" };
        result.Results.Add(new OperationResult { Failure = new OperationResultFailure { FailureDetails = new TaskFailureDetails { ErrorType = "InvalidOperationException", ErrorMessage = "refused" } } });
        result.Results.Add(new OperationResult { Success = new OperationResultSuccess { Result = "7" } });
        result.Actions.Add(new OperationAction { SendSignal = new SendSignalAction { InstanceId = B, Name = "add" } });
        Assert.True(hub.Complete(A, result));

        Assert.Equal(["respond o1", "respond o2", "action", "changed @counter@a", "idle @counter@a"], hub.Log.TakeLast(5));
        var failed = hub.Delivered[0].Message;
        Assert.Equal("c1", failed.EntityOperationFailed.RequestId);
        Assert.Equal("refused", failed.EntityOperationFailed.FailureDetails.ErrorMessage);
        // The older encoding: an event named after the request, with the result in JSON.
        var legacy = hub.Delivered[1].Message;
        Assert.Equal("c2", legacy.EventRaised.Name);
        Assert.Equal("7", JsonDocument.Parse(legacy.EventRaised.Input).RootElement.GetProperty("result").GetString());
        Assert.Equal("7", hub.Entities[A].State);
        Assert.Equal(B, Assert.Single(hub.Actions).SendSignal.InstanceId);
    }

    [Fact]
    public void A_state_over_the_limit_is_found_one_operation_at_a_time_and_fails_that_operation()
    {
        var big = new string('x', 100);
        var hub = new FakeHub("o1");
        hub.Send(A, Signal("s1"));
        hub.Send(A, Call("o1", "c2"));
        hub.Dispatch(A);

        Assert.False(hub.Complete(A, Succeeded(big, null, big), maxStateBytes: 50));
        Assert.True(hub.Entities[A].SingleOperationBatches);
        Assert.Null(hub.Entities[A].State);

        Assert.Equal(["s1"], Ids(hub.Dispatch(A)));
        Assert.True(hub.Complete(A, Succeeded("1", [null]), maxStateBytes: 50));
        Assert.Equal("1", hub.Entities[A].State);
        Assert.False(hub.Entities[A].SingleOperationBatches);

        Assert.Equal(["c2"], Ids(hub.Dispatch(A)));
        Assert.True(hub.Complete(A, Succeeded(big, big), maxStateBytes: 50));

        Assert.Equal("1", hub.Entities[A].State);
        var (to, _, response) = Assert.Single(hub.Delivered);
        Assert.Equal("o1", to);
        Assert.Equal(DurableTask.Scheduler.Domain.PayloadLimit.ErrorType, response.EntityOperationFailed.FailureDetails.ErrorType);
        Assert.True(response.EntityOperationFailed.FailureDetails.IsNonRetriable);
    }

    [Fact]
    public void A_client_signal_id_seen_recently_is_dropped()
    {
        var entity = new Entity(A);

        Assert.True(EntityRules.AcceptSignal(entity, "r1"));
        Assert.True(EntityRules.AcceptSignal(entity, "r2"));
        Assert.False(EntityRules.AcceptSignal(entity, "r1"));
        Assert.True(EntityRules.AcceptSignal(entity, ""));
        Assert.True(EntityRules.AcceptSignal(entity, null));
        Assert.Equal(["r1", "r2"], entity.RecentRequestOrder!);

        // Only the most recent ids are kept: the oldest drops out of the window.
        for (int i = 0; i < EntityRules.DedupeWindow; i++) Assert.True(EntityRules.AcceptSignal(entity, $"n{i}"));
        Assert.True(EntityRules.AcceptSignal(entity, "r1"));
        Assert.False(EntityRules.AcceptSignal(entity, $"n{EntityRules.DedupeWindow - 1}"));
        Assert.Equal(EntityRules.DedupeWindow, entity.RecentRequestIds!.Count);
    }

    [Fact]
    public void An_entity_with_nothing_left_to_do_is_reported_idle()
    {
        var hub = new FakeHub("o1");
        hub.Send(A, LockRequest("o1", "cs1", false, A));
        hub.Log.Clear();

        hub.Send(A, Unlock("o1", "cs1"));

        Assert.Equal(["changed @counter@a", "changed @counter@a", "changed @counter@a", "idle @counter@a"], hub.Log);
        Assert.True(hub.Entities[A].IsEmpty);
    }
}
