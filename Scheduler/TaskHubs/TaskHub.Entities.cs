using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Durable entities: per-entity FIFO queues, one batch in flight per entity, critical-section locks acquired in
/// lock-set order, and answers to calling orchestrations in the encoding they used.
/// </summary>
public sealed partial class TaskHub
{
    public const int MaxEntityBatchSize = 200;
    const int DedupeWindow = 1000;

    readonly Dictionary<string, Entity> _entities = new(StringComparer.Ordinal);
    readonly SortedSet<string> _entityIds = new(StringComparer.Ordinal);
    readonly LinkedList<Entity> _readyEntities = new();
    readonly Dictionary<string, HashSet<string>> _locksByOwner = new(StringComparer.Ordinal);

    Entity GetOrCreateEntity(string id)
    {
        if (!_entities.TryGetValue(id, out var entity))
        {
            entity = new Entity(id) { LastModified = Now };
            _entities.Add(id, entity);
            _entityIds.Add(id);
        }

        return entity;
    }

    void ForgetEntityIfEmpty(Entity entity)
    {
        if (!entity.IsEmpty || entity.Queued) return;
        _entities.Remove(entity.InstanceId);
        _entityIds.Remove(entity.InstanceId);
        MarkDeleted(entity);
    }

    /// <summary>Holds a request at its entity until it is due; kept with the entity so it survives a restart.</summary>
    void ScheduleEntityMessage(Entity entity, EntityMessage message, DateTime due)
    {
        var item = (due, message);
        entity.Scheduled.Add(item);
        MarkDirty(entity);
        Schedule(due, () =>
        {
            if (!entity.Scheduled.Remove(item)) return;
            if (!_entities.ContainsKey(entity.InstanceId))
            {
                _entities.Add(entity.InstanceId, entity);
                _entityIds.Add(entity.InstanceId);
            }

            entity.Queue.AddLast(message);
            MarkDirty(entity);
            ProcessEntity(entity);
        });
    }

    /// <summary>Queues a request at an entity (now, or at its due time) and moves the entity along.</summary>
    void SendToEntity(string entityId, EntityMessage message, DateTime? due)
    {
        if (!EntityIds.IsEntityId(entityId)) return;
        var entity = GetOrCreateEntity(entityId);
        if (due is { } at && at > Now)
        {
            ScheduleEntityMessage(entity, message, at);
            return;
        }

        entity.Queue.AddLast(message);
        MarkDirty(entity);
        ProcessEntity(entity);
    }

    /// <summary>Handles lock and unlock requests in place, and readies the entity when an operation can run.</summary>
    void ProcessEntity(Entity entity)
    {
        while (entity.Lease is null)
        {
            var node = FirstDequeueable(entity);
            if (node is null) break;
            var message = node.Value;
            switch (message.Event.EventTypeCase)
            {
                case EventTypeOneofCase.EntityLockRequested:
                    entity.Queue.Remove(node);
                    MarkDirty(entity);
                    AcquireLock(entity, message);
                    continue;

                case EventTypeOneofCase.EntityUnlockSent:
                    entity.Queue.Remove(node);
                    MarkDirty(entity);
                    if (entity.LockedBy is not null && entity.LockedBy == message.ParentInstanceId) ReleaseLock(entity);
                    continue;

                default:
                    if (entity.NotBefore > Now)
                    {
                        var target = entity;
                        Schedule(entity.NotBefore, () => ProcessEntity(target));
                    }
                    else if (!entity.Queued)
                    {
                        entity.Queued = true;
                        _readyEntities.AddLast(entity);
                    }

                    return;
            }
        }

        ForgetEntityIfEmpty(entity);
    }

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

    void AcquireLock(Entity entity, EntityMessage message)
    {
        var request = message.Event.EntityLockRequested;
        var owner = message.ParentInstanceId;
        // A request from an orchestration that has ended since it asked must not lock anything.
        if (owner is null || !_instances.TryGetValue(owner, out var orchestration) || orchestration.IsTerminal) return;
        if (entity.LockedBy is not null && entity.LockedBy != owner) return;

        entity.LockedBy = owner;
        entity.LockCriticalSectionId = request.CriticalSectionId;
        MarkDirty(entity);
        if (!_locksByOwner.TryGetValue(owner, out var held)) _locksByOwner[owner] = held = new HashSet<string>(StringComparer.Ordinal);
        held.Add(entity.InstanceId);

        int next = request.Position + 1;
        if (next < request.LockSet.Count)
        {
            var forwarded = request.Clone();
            forwarded.Position = next;
            SendToEntity(request.LockSet[next], new EntityMessage
            {
                Event = new HistoryEvent { EventId = -1, EntityLockRequested = forwarded },
                ParentInstanceId = owner,
                Legacy = message.Legacy,
            }, null);
            return;
        }

        var now = Timestamp.FromDateTime(Now);
        var granted = message.Legacy
            ? LegacyEntityCodec.LockGranted(request.CriticalSectionId, now)
            : new HistoryEvent { EventId = -1, Timestamp = now, EntityLockGranted = new EntityLockGrantedEvent { CriticalSectionId = request.CriticalSectionId } };
        Deliver(owner, granted);
    }

    void ReleaseLock(Entity entity)
    {
        if (entity.LockedBy is { } owner && _locksByOwner.TryGetValue(owner, out var held))
        {
            held.Remove(entity.InstanceId);
            if (held.Count == 0) _locksByOwner.Remove(owner);
        }

        entity.LockedBy = null;
        entity.LockCriticalSectionId = null;
        MarkDirty(entity);
    }

    /// <summary>Releases every lock an orchestration holds; called when it ends or is removed.</summary>
    void ReleaseLocksHeldBy(string orchestrationId)
    {
        if (!_locksByOwner.Remove(orchestrationId, out var held)) return;
        foreach (var id in held)
        {
            if (!_entities.TryGetValue(id, out var entity) || entity.LockedBy != orchestrationId) continue;
            entity.LockedBy = null;
            entity.LockCriticalSectionId = null;
            MarkDirty(entity);
            ProcessEntity(entity);
        }
    }

    /// <summary>Routes an orchestration's entity action (explicit encoding).</summary>
    void RouteEntityAction(Instance instance, SendEntityMessageAction action)
    {
        switch (action.EntityMessageTypeCase)
        {
            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityOperationSignaled:
                var signal = action.EntityOperationSignaled;
                if (signal.TargetInstanceId is not { } signalTarget) return;
                SendToEntity(signalTarget, new EntityMessage
                {
                    Event = new HistoryEvent
                    {
                        EventId = -1,
                        EntityOperationSignaled = new EntityOperationSignaledEvent
                        {
                            RequestId = signal.RequestId, Operation = signal.Operation, Input = signal.Input, ScheduledTime = signal.ScheduledTime,
                        },
                    },
                }, DueTime(signal.ScheduledTime));
                break;

            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityOperationCalled:
                var call = action.EntityOperationCalled;
                if (call.TargetInstanceId is not { } callTarget) return;
                string parentExecution = string.IsNullOrEmpty(call.ParentExecutionId) ? instance.ExecutionId : call.ParentExecutionId;
                SendToEntity(callTarget, new EntityMessage
                {
                    Event = new HistoryEvent
                    {
                        EventId = -1,
                        EntityOperationCalled = new EntityOperationCalledEvent
                        {
                            RequestId = call.RequestId, Operation = call.Operation, Input = call.Input, ScheduledTime = call.ScheduledTime,
                            ParentInstanceId = instance.InstanceId, ParentExecutionId = parentExecution,
                        },
                    },
                    ParentInstanceId = instance.InstanceId,
                    ParentExecutionId = parentExecution,
                }, DueTime(call.ScheduledTime));
                break;

            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityLockRequested:
                var lockRequest = action.EntityLockRequested.Clone();
                if (lockRequest.LockSet.Count == 0 || lockRequest.Position < 0 || lockRequest.Position >= lockRequest.LockSet.Count) return;
                lockRequest.ParentInstanceId = instance.InstanceId;
                SendToEntity(lockRequest.LockSet[lockRequest.Position], new EntityMessage
                {
                    Event = new HistoryEvent { EventId = -1, EntityLockRequested = lockRequest },
                    ParentInstanceId = instance.InstanceId,
                }, null);
                break;

            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityUnlockSent:
                var unlock = action.EntityUnlockSent;
                if (unlock.TargetInstanceId is not { } unlockTarget) return;
                SendToEntity(unlockTarget, new EntityMessage
                {
                    Event = new HistoryEvent
                    {
                        EventId = -1,
                        EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = unlock.CriticalSectionId, ParentInstanceId = instance.InstanceId },
                    },
                    ParentInstanceId = instance.InstanceId,
                }, null);
                break;
        }
    }

    /// <summary>A due time from a worker or client; one outside the representable range counts as "now".</summary>
    static DateTime? DueTime(Timestamp? scheduled) =>
        scheduled is not null && Errors.CheckTimestamp(scheduled, "") is null ? scheduled.ToDateTime() : null;

    void PumpEntities()
    {
        var node = _readyEntities.First;
        while (node is not null)
        {
            var next = node.Next;
            var entity = node.Value;
            if (entity.Lease is not null || FirstDequeueable(entity) is not { Value.IsOperation: true })
            {
                _readyEntities.Remove(node);
                entity.Queued = false;
                ProcessEntity(entity);
                node = next;
                continue;
            }

            if (!IsCommitted(entity.DirtyEpoch))
            {
                node = next;
                continue;
            }

            var worker = PickWorker(Dispatch.WorkKind.Entity, entity.Name, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _readyEntities.Remove(node);
                entity.Queued = false;
                SendEntityBatch(worker, entity);
            }

            node = next;
        }
    }

    void SendEntityBatch(Dispatch.WorkerConnection worker, Entity entity)
    {
        int max = entity.SingleOperationBatches ? 1 : MaxEntityBatchSize;
        var batch = new List<EntityMessage>();
        var request = new EntityRequest { InstanceId = entity.InstanceId, ExecutionId = "", EntityState = entity.State };
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
                request.OperationRequests.Add(message.Event);
            }

            node = next;
        }

        var lease = new EntityLease { Token = NewToken('e'), Worker = worker, Entity = entity, Batch = batch };
        entity.Lease = lease;
        _leases.Add(lease.Token, lease);
        worker.Leases.Add(lease);
        worker.InFlightEntities++;
        worker.Outbox.Writer.TryWrite(new OutboundWorkItem(new WorkItem { EntityRequestV2 = request, CompletionToken = lease.Token }));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "entity"), new KeyValuePair<string, object?>("hub", Name));
    }

    static void Requeue(Entity entity, List<EntityMessage> batch, int from)
    {
        for (int i = batch.Count - 1; i >= from; i--) entity.Queue.AddFirst(batch[i]);
    }

    public void CompleteEntity(EntityBatchResult result)
    {
        string? violation = null;
        lock (_gate)
        {
            if (!_leases.TryGetValue(result.CompletionToken, out var found) || found is not EntityLease lease)
            {
                Logs.StaleCompletion(_logger, result.CompletionToken, Name);
                return;
            }

            EndLease(lease);
            var entity = lease.Entity;
            var batch = lease.Batch;
            var now = Now;

            if (result.FailureDetails is not null)
            {
                // The worker could not run the batch at all: its state must not be applied. Retry later.
                Requeue(entity, batch, 0);
                entity.FailedDeliveries++;
                entity.NotBefore = now + RedeliveryDelay(entity.FailedDeliveries);
                ProcessEntity(entity);
                Pump();
                return;
            }

            int executed = Math.Min(result.Results.Count, batch.Count);
            violation = Errors.CheckPayload(result.EntityState, "the state of entity", _options.MaxPayloadBytes, entity.InstanceId);
            if (violation is not null && executed > 1)
            {
                // Find the operation that breaks the limit by running them one at a time.
                Requeue(entity, batch, 0);
                entity.SingleOperationBatches = true;
                violation = null;
                ProcessEntity(entity);
                Pump();
                return;
            }

            entity.FailedDeliveries = 0;
            var ts = Timestamp.FromDateTime(now);
            if (violation is not null)
            {
                // The one operation would have grown the state past the limit: it fails, the state stays as it was.
                if (executed == 1)
                {
                    Respond(batch[0], null, new TaskFailureDetails { ErrorType = PayloadTooLargeErrorType, ErrorMessage = violation, IsNonRetriable = true }, ts);
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
                    if (r.ResultTypeCase == OperationResult.ResultTypeOneofCase.Failure) Respond(batch[i], null, r.Failure.FailureDetails, ts);
                    else Respond(batch[i], r.Success?.Result, null, ts);
                }

                foreach (var action in result.Actions) RouteEntityOperationAction(action);
            }

            Requeue(entity, batch, executed);
            MarkDirty(entity);
            SchedulerTelemetry.WorkItemsCompleted.Add(1, new KeyValuePair<string, object?>("type", "entity"), new KeyValuePair<string, object?>("hub", Name));
            ProcessEntity(entity);
            Pump();
        }
    }

    void Respond(EntityMessage message, string? output, TaskFailureDetails? failure, Timestamp now)
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

        // A response for an execution that has continued as new is dropped.
        Deliver(message.ParentInstanceId, response, message.ParentExecutionId);
    }

    void RouteEntityOperationAction(OperationAction action)
    {
        switch (action.OperationActionTypeCase)
        {
            case OperationAction.OperationActionTypeOneofCase.SendSignal:
                var signal = action.SendSignal;
                if (!EntityIds.IsEntityId(signal.InstanceId)) return;
                SendToEntity(EntityIds.Normalize(signal.InstanceId), new EntityMessage
                {
                    Event = new HistoryEvent
                    {
                        EventId = -1,
                        EntityOperationSignaled = new EntityOperationSignaledEvent
                        {
                            RequestId = Guid.NewGuid().ToString(), Operation = signal.Name, Input = signal.Input, ScheduledTime = signal.ScheduledTime,
                        },
                    },
                }, DueTime(signal.ScheduledTime));
                break;

            case OperationAction.OperationActionTypeOneofCase.StartNewOrchestration:
                var start = action.StartNewOrchestration;
                var id = string.IsNullOrEmpty(start.InstanceId) ? Guid.NewGuid().ToString("N") : start.InstanceId;
                if (Errors.CheckInstanceId(id) is not null || string.IsNullOrEmpty(start.Name)) return;
                if (_instances.TryGetValue(id, out var existing))
                {
                    if (!existing.IsTerminal) return;
                    RemoveInstance(existing);
                }

                CreateInstance(id, start.Name, start.Version, start.Input, null, null, start.ParentTraceContext, DueTime(start.ScheduledTime), null);
                break;
        }
    }

    // ---- client operations ----

    public void SignalEntity(SignalEntityRequest request)
    {
        lock (_gate)
        {
            var id = EntityIds.Normalize(request.InstanceId);
            var entity = GetOrCreateEntity(id);
            if (!string.IsNullOrEmpty(request.RequestId))
            {
                entity.RecentRequestIds ??= new HashSet<string>(StringComparer.Ordinal);
                entity.RecentRequestOrder ??= new Queue<string>();
                if (!entity.RecentRequestIds.Add(request.RequestId))
                {
                    ForgetEntityIfEmpty(entity);
                    return;
                }

                entity.RecentRequestOrder.Enqueue(request.RequestId);
                if (entity.RecentRequestOrder.Count > DedupeWindow) entity.RecentRequestIds.Remove(entity.RecentRequestOrder.Dequeue());
            }

            var requestId = string.IsNullOrEmpty(request.RequestId) ? Guid.NewGuid().ToString() : request.RequestId;
            SendToEntity(id, new EntityMessage
            {
                Event = new HistoryEvent
                {
                    EventId = -1,
                    EntityOperationSignaled = new EntityOperationSignaledEvent
                    {
                        RequestId = requestId, Operation = request.Name, Input = request.Input, ScheduledTime = request.ScheduledTime,
                    },
                },
            }, DueTime(request.ScheduledTime));
            Pump();
        }
    }

    public EntityMetadata? GetEntity(string instanceId, bool includeState)
    {
        lock (_gate)
        {
            var id = EntityIds.Normalize(instanceId);
            return _entities.TryGetValue(id, out var entity) && entity.State is not null ? ToMetadata(entity, includeState) : null;
        }
    }

    static EntityMetadata ToMetadata(Entity entity, bool includeState)
    {
        var metadata = new EntityMetadata
        {
            InstanceId = entity.InstanceId,
            LastModifiedTime = Timestamp.FromDateTime(entity.LastModified),
            BacklogQueueSize = entity.Queue.Count + (entity.Lease?.Batch.Count ?? 0),
            LockedBy = entity.LockedBy,
        };
        if (includeState && entity.State is not null) metadata.SerializedState = entity.State;
        return metadata;
    }

    public (List<EntityMetadata> Page, string? Next) QueryEntities(string? prefix, DateTime? from, DateTime? to, bool includeState,
        bool includeTransient, int pageSize, string? after)
    {
        var page = new List<EntityMetadata>();
        lock (_gate)
        {
            IEnumerable<string> ids = _entityIds;
            string? lower = string.IsNullOrEmpty(prefix) ? null : prefix;
            if (after is not null && (lower is null || string.CompareOrdinal(after, lower) > 0)) lower = after;
            if (lower is not null && _entityIds.Count > 0)
            {
                if (string.CompareOrdinal(lower, _entityIds.Max!) > 0) return (page, null);
                ids = _entityIds.GetViewBetween(lower, _entityIds.Max!);
            }

            string? last = null;
            foreach (var id in ids)
            {
                if (after is not null && string.CompareOrdinal(id, after) <= 0) continue;
                if (!string.IsNullOrEmpty(prefix) && !id.StartsWith(prefix, StringComparison.Ordinal)) break;
                var entity = _entities[id];
                if (entity.State is null && !includeTransient) continue;
                if (from is { } f && entity.LastModified < f) continue;
                if (to is { } t && entity.LastModified > t) continue;
                if (page.Count == pageSize) return (page, last);
                page.Add(ToMetadata(entity, includeState));
                last = id;
            }
        }

        return (page, null);
    }

    public (int EmptyRemoved, int LocksReleased) CleanEntityStorage(bool removeEmpty, bool releaseOrphanedLocks)
    {
        int removed = 0, released = 0;
        lock (_gate)
        {
            foreach (var entity in _entities.Values.ToList())
            {
                if (releaseOrphanedLocks && entity.LockedBy is { } owner
                    && (!_instances.TryGetValue(owner, out var holder) || holder.IsTerminal))
                {
                    ReleaseLock(entity);
                    released++;
                    ProcessEntity(entity);
                }

                if (removeEmpty && entity.State is null && entity.Queue.Count == 0 && entity.LockedBy is null && entity.Lease is null && !entity.Queued)
                {
                    if (_entities.Remove(entity.InstanceId))
                    {
                        _entityIds.Remove(entity.InstanceId);
                        MarkDeleted(entity);
                        removed++;
                    }
                }
            }

            Pump();
        }

        return (removed, released);
    }

    /// <summary>Deletes an entity's state. 1 when there was state to delete.</summary>
    public int PurgeEntity(string instanceId)
    {
        lock (_gate)
        {
            var id = EntityIds.Normalize(instanceId);
            if (!_entities.TryGetValue(id, out var entity) || entity.State is null) return 0;
            entity.State = null;
            entity.LastModified = Now;
            MarkDirty(entity);
            ForgetEntityIfEmpty(entity);
            return 1;
        }
    }
}
