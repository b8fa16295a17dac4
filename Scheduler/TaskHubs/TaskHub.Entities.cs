using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Durable entities, the hub's side: the entities by id, the ready queue, batches handed to workers, timers and
/// delivery to orchestrations. The rules (queues, locks, answers) are <see cref="EntityRules"/>; the hub carries out
/// their effects.
/// </summary>
public sealed partial class TaskHub : IEntityEffects
{
    public const int MaxEntityBatchSize = EntityRules.MaxBatchSize;

    readonly Dictionary<string, Entity> _entities = new(StringComparer.Ordinal);
    readonly SortedSet<string> _entityIds = new(StringComparer.Ordinal);
    readonly EntityRules _entityRules = new();

    /// <summary>The entities each orchestration holds the lock of (kept by the rules; filled in on recovery).</summary>
    Dictionary<string, HashSet<string>> _locksByOwner => _entityRules.LocksByOwner;

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

            _entityRules.Arrive(entity, message, Now, this);
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

        _entityRules.Arrive(entity, message, Now, this);
    }

    /// <summary>Handles lock and unlock requests in place, and readies the entity when an operation can run.</summary>
    void ProcessEntity(Entity entity) => _entityRules.Process(entity, Now, this);

    /// <summary>Releases every lock an orchestration holds; called when it ends or is removed.</summary>
    void ReleaseLocksHeldBy(string orchestrationId) => _entityRules.OwnerEnded(orchestrationId, Now, this);

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
        scheduled is not null && RequestRules.CheckTimestamp(scheduled, "") is null ? scheduled.ToDateTime() : null;

    void CompleteEntity(EntityBatchResult result)
    {
        lock (_gate)
        {
            if (!_workers.TryGet(result.CompletionToken, out var found) || found is not InFlightEntityBatch work)
            {
                Logs.StaleCompletion(_logger, result.CompletionToken, Name);
                return;
            }

            EndInFlight(work);
            if (_entityRules.CompleteBatch(work.Entity, work.Batch, result, _options.MaxPayloadBytes, Now, this))
            {
                SchedulerTelemetry.WorkItemsCompleted.Add(1, new KeyValuePair<string, object?>("type", "entity"), new KeyValuePair<string, object?>("hub", Name));
            }

            Pump();
        }
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
                if (RequestRules.CheckInstanceId(id) is not null || string.IsNullOrEmpty(start.Name)) return;
                if (_instances.TryGet(id, out var existing))
                {
                    if (!existing.IsTerminal) return;
                    RemoveInstance(existing);
                }

                CreateInstance(id, start.Name, start.Version, start.Input, null, null, start.ParentTraceContext, DueTime(start.ScheduledTime), null);
                break;
        }
    }

    // ---- client operations ----

    void SignalEntity(SignalEntityRequest request)
    {
        lock (_gate)
        {
            var id = EntityIds.Normalize(request.InstanceId);
            var entity = GetOrCreateEntity(id);
            if (!EntityRules.AcceptSignal(entity, request.RequestId))
            {
                ForgetEntityIfEmpty(entity);
                return;
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
            BacklogQueueSize = entity.Queue.Count + (entity.InFlight?.Batch.Count ?? 0),
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

    (int EmptyRemoved, int LocksReleased) CleanEntityStorage(bool removeEmpty, bool releaseOrphanedLocks)
    {
        int removed = 0, released = 0;
        lock (_gate)
        {
            foreach (var entity in _entities.Values.ToList())
            {
                if (releaseOrphanedLocks && _entityRules.ReleaseOrphanedLock(entity, Now, this)) released++;

                if (removeEmpty && entity.State is null && entity.Queue.Count == 0 && entity.LockedBy is null && entity.InFlight is null && !entity.Queued)
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
    int PurgeEntity(string instanceId)
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

    // ---- the effects of the entity rules ----

    bool IEntityEffects.IsRunning(string orchestrationId) => _instances.TryGet(orchestrationId, out var instance) && !instance.IsTerminal;

    Entity? IEntityEffects.Find(string entityId) => _entities.GetValueOrDefault(entityId);

    TimeSpan IEntityEffects.RedeliveryDelay(int failedDeliveries) => RedeliveryDelay(failedDeliveries);

    void IEntityEffects.Changed(Entity entity) => MarkDirty(entity);

    void IEntityEffects.ForwardLockRequest(string entityId, EntityMessage request) => SendToEntity(entityId, request, null);

    void IEntityEffects.LockGranted(string orchestrationId, HistoryEvent granted) => Deliver(orchestrationId, granted);

    void IEntityEffects.Respond(string orchestrationId, string? executionId, HistoryEvent response) => Deliver(orchestrationId, response, executionId);

    void IEntityEffects.RouteAction(OperationAction action) => RouteEntityOperationAction(action);

    void IEntityEffects.Ready(Entity entity) => _dispatch.Enqueue(entity);

    void IEntityEffects.WakeAt(Entity entity, DateTime at) => Schedule(at, () => ProcessEntity(entity));

    void IEntityEffects.Idle(Entity entity) => ForgetEntityIfEmpty(entity);
}
