using DurableTask.Scheduler.Domain;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.Entities;

/// <summary>
/// The rules of durable entities, with no lock, store or clock: per-entity FIFO queues, one batch in flight per
/// entity, critical-section locks acquired one entity at a time in lock-set order and released by an unlock or when
/// their orchestration ends, deduplicated client signals, and answers to callers in the encoding they used.
/// It keeps which entities each orchestration has locked; everything else is in the <see cref="Entity"/> given.
/// </summary>
internal sealed class EntityRules
{
    public const int MaxBatchSize = 200;
    public const int DedupeWindow = 1000;

    /// <summary>The ids of the entities each orchestration holds the lock of.</summary>
    public Dictionary<string, HashSet<string>> LocksByOwner { get; } = new(StringComparer.Ordinal);

    /// <summary>A request arrives at the entity: it joins the end of the queue.</summary>
    public void Arrive(Entity entity, EntityMessage message, DateTime now, IEntityEffects effects)
    {
        entity.Queue.AddLast(message);
        effects.Changed(entity);
        Process(entity, now, effects);
    }

    /// <summary>Handles lock and unlock requests in place, and readies the entity when an operation can run.</summary>
    public void Process(Entity entity, DateTime now, IEntityEffects effects)
    {
        while (entity.InFlight is null)
        {
            var node = FirstDequeueable(entity);
            if (node is null) break;
            var message = node.Value;
            switch (message.Event.EventTypeCase)
            {
                case EventTypeOneofCase.EntityLockRequested:
                    entity.Queue.Remove(node);
                    effects.Changed(entity);
                    AcquireLock(entity, message, now, effects);
                    continue;

                case EventTypeOneofCase.EntityUnlockSent:
                    entity.Queue.Remove(node);
                    effects.Changed(entity);
                    if (entity.LockedBy is not null && entity.LockedBy == message.ParentInstanceId) ReleaseLock(entity, effects);
                    continue;

                default:
                    if (entity.NotBefore > now) effects.WakeAt(entity, entity.NotBefore);
                    else effects.Ready(entity);
                    return;
            }
        }

        effects.Idle(entity);
    }

    /// <summary>True when a batch may go to a worker now: none is in flight and the next request is an operation.</summary>
    public static bool CanRunBatch(Entity entity) => entity.InFlight is null && FirstDequeueable(entity) is { Value.IsOperation: true };

    /// <summary>While locked, only the lock holder's messages may be dequeued; they jump ahead of others.</summary>
    static LinkedListNode<EntityMessage>? FirstDequeueable(Entity entity)
    {
        if (entity.LockedBy is null) return entity.Queue.First;
        for (var node = entity.Queue.First; node is not null; node = node.Next)
        {
            if (node.Value.ParentInstanceId == entity.LockedBy) return node;
        }

        return null;
    }

    /// <summary>
    /// Takes the next batch off the queue: the operations in order up to the first lock or unlock request, only the
    /// lock holder's while the entity is locked.
    /// </summary>
    public static List<EntityMessage> TakeBatch(Entity entity)
    {
        int max = entity.SingleOperationBatches ? 1 : MaxBatchSize;
        var batch = new List<EntityMessage>();
        var node = FirstDequeueable(entity);
        while (node is not null && batch.Count < max)
        {
            var next = node.Next;
            var message = node.Value;
            if (entity.LockedBy is null || message.ParentInstanceId == entity.LockedBy)
            {
                if (!message.IsOperation) break;
                entity.Queue.Remove(node);
                batch.Add(message);
            }

            node = next;
        }

        return batch;
    }

    /// <summary>Puts the operations of a batch from <paramref name="from"/> on back at the head of the queue, in order.</summary>
    static void Requeue(Entity entity, List<EntityMessage> batch, int from)
    {
        for (int i = batch.Count - 1; i >= from; i--) entity.Queue.AddFirst(batch[i]);
    }

    /// <summary>
    /// A worker's result for the entity's batch (it is no longer in flight). A failed batch is retried after a delay;
    /// a state over <paramref name="maxStateBytes"/> from several operations runs them again one at a time, and from
    /// one fails that operation. Otherwise the state is taken, the callers answered and the actions routed.
    /// </summary>
    /// <returns>true when the worker's results were taken.</returns>
    public bool CompleteBatch(Entity entity, List<EntityMessage> batch, EntityBatchResult result, int maxStateBytes, DateTime now, IEntityEffects effects)
    {
        if (result.FailureDetails is not null)
        {
            // The worker could not run the batch at all: its state must not be applied.
            BatchNotRun(entity, batch, now, effects);
            return false;
        }

        int executed = Math.Min(result.Results.Count, batch.Count);
        var violation = PayloadLimit.Check(result.EntityState, "the state of entity", maxStateBytes, entity.InstanceId);
        if (violation is not null && executed > 1)
        {
            // Find the operation that breaks the limit by running them one at a time.
            Requeue(entity, batch, 0);
            entity.SingleOperationBatches = true;
            Process(entity, now, effects);
            return false;
        }

        entity.FailedDeliveries = 0;
        var ts = Timestamp.FromDateTime(now);
        if (violation is not null)
        {
            // The one operation would have grown the state past the limit: it fails, the state stays as it was.
            if (executed == 1)
            {
                Respond(batch[0], null, new TaskFailureDetails { ErrorType = PayloadLimit.ErrorType, ErrorMessage = violation, IsNonRetriable = true }, ts, effects);
            }
        }
        else
        {
            entity.SingleOperationBatches = false;
            if (executed > 0)
            {
                entity.State = result.EntityState;
                entity.LastModified = now;
            }

            for (int i = 0; i < executed; i++)
            {
                var r = result.Results[i];
                if (r.ResultTypeCase == OperationResult.ResultTypeOneofCase.Failure) Respond(batch[i], null, r.Failure.FailureDetails, ts, effects);
                else Respond(batch[i], r.Success?.Result, null, ts, effects);
            }

            foreach (var action in result.Actions) effects.RouteAction(action);
        }

        Requeue(entity, batch, executed);
        effects.Changed(entity);
        Process(entity, now, effects);
        return true;
    }

    /// <summary>
    /// A batch that did not run (its worker failed it or went away; it is no longer in flight): its operations go back to
    /// the head of the queue, to be handed out again after a delay that grows with each failure in a row.
    /// </summary>
    public void BatchNotRun(Entity entity, List<EntityMessage> batch, DateTime now, IEntityEffects effects)
    {
        Requeue(entity, batch, 0);
        entity.FailedDeliveries++;
        entity.NotBefore = now + effects.RedeliveryDelay(entity.FailedDeliveries);
        Process(entity, now, effects);
    }

    /// <summary>Answers the orchestration that called the operation (a signal has no one to answer).</summary>
    static void Respond(EntityMessage message, string? output, TaskFailureDetails? failure, Timestamp now, IEntityEffects effects)
    {
        if (message.Event.EventTypeCase != EventTypeOneofCase.EntityOperationCalled || message.ParentInstanceId is null) return;
        var requestId = message.Event.EntityOperationCalled.RequestId;
        HistoryEvent response;
        if (message.Legacy)
        {
            response = failure is not null
                ? LegacyEntityCodec.OperationFailed(requestId, failure, now)
                : LegacyEntityCodec.OperationCompleted(requestId, output, now);
        }
        else
        {
            response = new HistoryEvent { EventId = -1, Timestamp = now };
            if (failure is not null) response.EntityOperationFailed = new EntityOperationFailedEvent { RequestId = requestId, FailureDetails = failure };
            else response.EntityOperationCompleted = new EntityOperationCompletedEvent { RequestId = requestId, Output = output };
        }

        effects.Respond(message.ParentInstanceId, message.ParentExecutionId, response);
    }

    void AcquireLock(Entity entity, EntityMessage message, DateTime now, IEntityEffects effects)
    {
        var request = message.Event.EntityLockRequested;
        var owner = message.ParentInstanceId;
        // A request from an orchestration that has ended since it asked must not lock anything.
        if (owner is null || !effects.IsRunning(owner)) return;
        if (entity.LockedBy is not null && entity.LockedBy != owner) return;

        entity.LockedBy = owner;
        entity.LockCriticalSectionId = request.CriticalSectionId;
        effects.Changed(entity);
        if (!LocksByOwner.TryGetValue(owner, out var held)) LocksByOwner[owner] = held = new HashSet<string>(StringComparer.Ordinal);
        held.Add(entity.InstanceId);

        int next = request.Position + 1;
        if (next < request.LockSet.Count)
        {
            var forwarded = request.Clone();
            forwarded.Position = next;
            effects.ForwardLockRequest(request.LockSet[next], new EntityMessage
            {
                Event = new HistoryEvent { EventId = -1, EntityLockRequested = forwarded },
                ParentInstanceId = owner,
                Legacy = message.Legacy,
            });
            return;
        }

        var ts = Timestamp.FromDateTime(now);
        var granted = message.Legacy
            ? LegacyEntityCodec.LockGranted(request.CriticalSectionId, ts)
            : new HistoryEvent { EventId = -1, Timestamp = ts, EntityLockGranted = new EntityLockGrantedEvent { CriticalSectionId = request.CriticalSectionId } };
        effects.LockGranted(owner, granted);
    }

    void ReleaseLock(Entity entity, IEntityEffects effects)
    {
        if (entity.LockedBy is { } owner && LocksByOwner.TryGetValue(owner, out var held))
        {
            held.Remove(entity.InstanceId);
            if (held.Count == 0) LocksByOwner.Remove(owner);
        }

        Unlock(entity, effects);
    }

    static void Unlock(Entity entity, IEntityEffects effects)
    {
        entity.LockedBy = null;
        entity.LockCriticalSectionId = null;
        effects.Changed(entity);
    }

    /// <summary>The orchestration completed, failed, was terminated or removed: every lock it holds is released.</summary>
    public void OwnerEnded(string orchestrationId, DateTime now, IEntityEffects effects)
    {
        if (!LocksByOwner.Remove(orchestrationId, out var held)) return;
        foreach (var id in held)
        {
            if (effects.Find(id) is not { } entity || entity.LockedBy != orchestrationId) continue;
            Unlock(entity, effects);
            Process(entity, now, effects);
        }
    }

    /// <summary>Releases the entity's lock when its holder is no longer running.</summary>
    /// <returns>true when a lock was released.</returns>
    public bool ReleaseOrphanedLock(Entity entity, DateTime now, IEntityEffects effects)
    {
        if (entity.LockedBy is not { } owner || effects.IsRunning(owner)) return false;
        ReleaseLock(entity, effects);
        Process(entity, now, effects);
        return true;
    }

    /// <summary>Remembers a client signal's request id.</summary>
    /// <returns>false when the entity saw the id among its recent ones: the signal is a duplicate, to be dropped.</returns>
    public static bool AcceptSignal(Entity entity, string? requestId)
    {
        if (string.IsNullOrEmpty(requestId)) return true;
        entity.RecentRequestIds ??= new HashSet<string>(StringComparer.Ordinal);
        entity.RecentRequestOrder ??= new Queue<string>();
        if (!entity.RecentRequestIds.Add(requestId)) return false;
        entity.RecentRequestOrder.Enqueue(requestId);
        if (entity.RecentRequestOrder.Count > DedupeWindow) entity.RecentRequestIds.Remove(entity.RecentRequestOrder.Dequeue());
        return true;
    }
}
