using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Google.Protobuf.Collections;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Applying a worker's completion: the episode's events and the actions' events are committed to the instance's
/// history, and the messages the actions produce are routed (activities, timers, child starts, events, parent results).
/// </summary>
public sealed partial class TaskHub
{
    /// <summary>Applies a worker's orchestrator result. Returns the payload-limit violation that failed it, if any.</summary>
    public string? CompleteOrchestration(OrchestratorResponse response)
    {
        string? violation;
        lock (_gate)
        {
            if (!_workers.TryGet(response.CompletionToken, out var found) || found is not InFlightEpisode work
                || work.Instance.InstanceId != response.InstanceId)
            {
                Logs.StaleCompletion(_logger, response.CompletionToken, Name);
                return null;
            }

            if (!work.FirstChunkSeen)
            {
                work.FirstChunkSeen = true;
                work.NumEventsProcessed = response.NumEventsProcessed;
                // Handed back with the next work item, so the worker keeps one orchestration span across episodes.
                if (response.OrchestrationTraceContext is { } trace) work.Instance.TraceContext = trace;
            }

#pragma warning disable CS0612 // chunked completions are deprecated but still sent by the .NET SDK
            bool partial = response.IsPartial;
#pragma warning restore CS0612
            if (partial)
            {
                (work.PartialActions ??= new()).AddRange(response.Actions);
                return null;
            }

            IList<OrchestratorAction> actions = response.Actions;
            if (work.PartialActions is { } earlier)
            {
                earlier.AddRange(response.Actions);
                actions = earlier;
            }

            violation = CheckPayloads(response.CustomStatus, actions);
            EndInFlight(work);
            var instance = work.Instance;
            if (_instances.TryGet(instance.InstanceId, out var current) && ReferenceEquals(current, instance))
            {
                if (violation is not null)
                {
                    Logs.OrchestrationRejected(_logger, instance.InstanceId, Name, violation);
                    actions = [FailAction(violation)];
                }

                ApplyEpisode(instance, work, violation is null ? response.CustomStatus : null, actions);
            }

            SchedulerTelemetry.WorkItemsCompleted.Add(1, new KeyValuePair<string, object?>("type", "orchestrator"), new KeyValuePair<string, object?>("hub", Name));
            Pump();
        }

        return violation;
    }

    /// <summary>Applies an activity result. Returns the payload-limit violation that turned it into a failure, if any.</summary>
    public string? CompleteActivity(ActivityResponse response)
    {
        string? violation = null;
        lock (_gate)
        {
            if (!_workers.TryGet(response.CompletionToken, out var found) || found is not InFlightActivity work
                || (response.InstanceId.Length > 0 && (response.InstanceId != work.Task.InstanceId || response.TaskId != work.Task.TaskId)))
            {
                Logs.StaleCompletion(_logger, response.CompletionToken, Name);
                return null;
            }

            EndInFlight(work);
            var task = work.Task;
            var e = NewEvent(Now);
            if (response.FailureDetails is { } failure)
            {
                e.TaskFailed = new TaskFailedEvent { TaskScheduledId = task.TaskId, FailureDetails = failure };
            }
            else if ((violation = RequestRules.CheckPayload(response.Result, "the result of activity", _options.MaxPayloadBytes, task.Name)) is not null)
            {
                e.TaskFailed = new TaskFailedEvent
                {
                    TaskScheduledId = task.TaskId,
                    FailureDetails = new TaskFailureDetails { ErrorType = PayloadLimit.ErrorType, ErrorMessage = violation, IsNonRetriable = true },
                };
            }
            else
            {
                e.TaskCompleted = new TaskCompletedEvent { TaskScheduledId = task.TaskId, Result = response.Result };
            }

            Deliver(task.InstanceId, e, task.ExecutionId);
            SchedulerTelemetry.WorkItemsCompleted.Add(1, new KeyValuePair<string, object?>("type", "activity"), new KeyValuePair<string, object?>("hub", Name));
            Pump();
        }

        return violation;
    }

    string? CheckPayloads(string? customStatus, IList<OrchestratorAction> actions)
    {
        int limit = _options.MaxPayloadBytes;
        var problem = RequestRules.CheckPayload(customStatus, "customStatus", limit);
        if (problem is not null) return problem;
        // Indexed, not foreach: the list's enumerator is a class, one allocation per call.
        for (int i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            problem = action.OrchestratorActionTypeCase switch
            {
                OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask =>
                    RequestRules.CheckPayload(action.ScheduleTask.Input, "the input of activity", limit, action.ScheduleTask.Name),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration =>
                    RequestRules.CheckPayload(action.CreateSubOrchestration.Input, "the input of sub-orchestration", limit, action.CreateSubOrchestration.Name)
                    ?? RequestRules.CheckInstanceId(action.CreateSubOrchestration.InstanceId, "the sub-orchestration instance id"),
                OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent =>
                    RequestRules.CheckPayload(action.SendEvent.Data, "the payload of event", limit, action.SendEvent.Name),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration =>
                    RequestRules.CheckPayload(action.CompleteOrchestration.Result, "the orchestration output", limit)
                    ?? (RequestRules.CheckTags(action.CompleteOrchestration.Tags) is { } tags ? "completeOrchestration.tags: " + tags : null),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CreateTimer =>
                    action.CreateTimer.FireAt is null ? "a timer action has no fireAt time" : RequestRules.CheckTimestamp(action.CreateTimer.FireAt, "the fireAt time of a timer"),
                OrchestratorAction.OrchestratorActionTypeOneofCase.SendEntityMessage =>
                    RequestRules.CheckTimestamp(action.SendEntityMessage.EntityOperationSignaled?.ScheduledTime, "the scheduled time of an entity signal")
                    ?? RequestRules.CheckTimestamp(action.SendEntityMessage.EntityOperationCalled?.ScheduledTime, "the scheduled time of an entity call"),
                _ => null,
            };
            if (problem is not null) return problem;
        }

        return null;
    }

    static OrchestratorAction FailAction(string message) => new()
    {
        Id = -1,
        CompleteOrchestration = new CompleteOrchestrationAction
        {
            OrchestrationStatus = OrchestrationStatus.Failed,
            FailureDetails = new TaskFailureDetails { ErrorType = PayloadLimit.ErrorType, ErrorMessage = message, IsNonRetriable = true },
        },
    };

    void ApplyEpisode(Instance instance, InFlightEpisode work, string? customStatus, IList<OrchestratorAction> actions)
    {
        var now = Now;
        instance.FailedDeliveries = 0;
        int processed = work.DispatchedCount;
        if (work.NumEventsProcessed is int n && n - 1 < processed) processed = Math.Max(0, n - 1);
        // The work item's encoding of the dispatched messages is reused while the inbox still starts with them.
        var dispatched = work.NewEvents;
        bool encoded = !dispatched.IsEmpty && (processed == 0 || ReferenceEquals(instance.Inbox[0], work.FirstDispatched));
        _orchestrations.ApplyEpisode(instance, new Episode(work.StartedAt, processed, encoded ? dispatched : default, customStatus, actions), this, now);
        MarkDirty(instance);
        NotifyWaiters(instance);
        MakeReady(instance);
    }

    /// <summary>The orchestration rules every instance of this hub follows.</summary>
    readonly OrchestrationStateMachine _orchestrations;

    void IOrchestrationEffects.ScheduleActivity(InstanceState instance, int taskId, string name, string? version, string? input,
        TraceContext? traceContext, MapField<string, string> tags, bool recovered) =>
        EnqueueActivity(NewActivityTask(instance, taskId, name, version, input, traceContext, tags, recovered ? 0 : _commits.Epoch));

    void IOrchestrationEffects.ArmTimer(InstanceState instance, int timerId, Google.Protobuf.WellKnownTypes.Timestamp fireAt) =>
        ScheduleTimer(instance.InstanceId, instance.ExecutionId, ((Instance)instance).Incarnation, timerId, fireAt);

    void IOrchestrationEffects.StartChild(InstanceState parent, int taskScheduledId, CreateSubOrchestrationAction action) =>
        StartChild(parent, taskScheduledId, action);

    void IOrchestrationEffects.SendToInstance(string instanceId, string? executionId, HistoryEvent message) =>
        Deliver(instanceId, message, executionId);

    void IOrchestrationEffects.SendEvent(InstanceState sender, string target, string? executionId, string name, string? data)
    {
        if (!EntityIds.IsEntityId(target))
        {
            Deliver(target, OrchestrationStateMachine.EventRaised(name, data, Now), executionId);
            return;
        }

        var entityMessage = LegacyEntityCodec.Decode(name, data, target, sender.InstanceId, sender.ExecutionId, out var due);
        if (entityMessage is not null) SendToEntity(EntityIds.Normalize(target), entityMessage, due);
    }

    void IOrchestrationEffects.SendEntityMessage(InstanceState sender, SendEntityMessageAction action) => RouteEntityAction((Instance)sender, action);

    void IOrchestrationEffects.ExecutionEnded(InstanceState state)
    {
        var instance = (Instance)state;
        MarkDirty(instance);
        _instances.TrackFinished(instance);
        _throughput.CountFinished(Now);
        ReleaseLocksHeldBy(instance.InstanceId);
        // Its history is complete: kept packed from now on. With a durable store the commit's snapshot packs it,
        // after reading the events it has not stored yet.
        if (!Durable) instance.PackHistory();
    }

    void IOrchestrationEffects.TerminateChild(string childInstanceId, string? reason)
    {
        if (_instances.TryGet(childInstanceId, out var child) && !child.IsTerminal) TerminateInstance(child, reason, recursive: true, Now);
    }

    void IOrchestrationEffects.RewindChild(InstanceState parent, int taskScheduledId, SubOrchestrationInstanceCreatedEvent created)
    {
        if (_instances.TryGet(created.InstanceId, out var child))
        {
            if (child.Status == OrchestrationStatus.Failed) RewindInstance(child, null, parent.ExecutionId);
            return;
        }

        StartChild(parent, taskScheduledId, new CreateSubOrchestrationAction
        {
            InstanceId = created.InstanceId, Name = created.Name, Version = created.Version, Input = created.Input,
            ParentTraceContext = created.ParentTraceContext, Tags = { created.Tags },
        });
    }

    /// <summary>The activity work a task of the current execution, scheduled with these parts, asks for.</summary>
    static ActivityTask NewActivityTask(InstanceState instance, int taskId, string name, string? version, string? input, TraceContext? traceContext,
        MapField<string, string> tags, long epoch)
    {
        var executionId = instance.ExecutionId;
        return new ActivityTask
        {
            InstanceId = instance.InstanceId,
            ExecutionId = executionId,
            TaskId = taskId,
            Name = name,
            Version = version,
            ParentTraceContext = traceContext,
            Request = OutboundWorkItem.EncodeActivityRequest(name, version, input, traceContext, tags, instance.InstanceId, executionId, taskId),
            Epoch = epoch,
        };
    }

    void ScheduleTimer(string instanceId, string executionId, long incarnation, int timerId, Google.Protobuf.WellKnownTypes.Timestamp fireAt)
    {
        Schedule(fireAt.ToDateTime(), () => TimerDue(instanceId, executionId, incarnation, timerId, fireAt));
    }

    /// <summary>
    /// A timer armed for one time an instance was in memory came due. If the instance left memory since, it is read
    /// back, which arms its timers again (this one fires at once); if it was read back already, it armed its own.
    /// </summary>
    void TimerDue(string instanceId, string executionId, long incarnation, int timerId, Google.Protobuf.WellKnownTypes.Timestamp fireAt)
    {
        if (_instances.TryGet(instanceId, out var instance))
        {
            if (instance.Incarnation == incarnation) Deliver(instanceId, OrchestrationStateMachine.TimerFired(timerId, fireAt, Now), executionId);
            return;
        }

        if (_instances.UnfinishedSpilled) LoadWhenDue(instanceId);
    }

    void StartChild(InstanceState parent, int taskScheduledId, CreateSubOrchestrationAction action)
    {
        var parentInfo = new ParentInstanceInfo
        {
            TaskScheduledId = taskScheduledId,
            Name = parent.Name,
            Version = parent.Version,
            OrchestrationInstance = new OrchestrationInstance { InstanceId = parent.InstanceId, ExecutionId = parent.ExecutionId },
        };

        string? problem = RequestRules.CheckInstanceId(action.InstanceId, "the sub-orchestration instance id");
        if (problem is null && _instances.TryGet(action.InstanceId, out var existing))
        {
            if (existing.IsTerminal) RemoveInstance(existing);
            else problem = $"an orchestration with instance id '{action.InstanceId}' already exists and is {StatusName(existing.Status)}";
        }

        if (problem is not null)
        {
            var failed = NewEvent(Now);
            failed.SubOrchestrationInstanceFailed = new SubOrchestrationInstanceFailedEvent
            {
                TaskScheduledId = taskScheduledId,
                FailureDetails = new TaskFailureDetails { ErrorType = "InvalidOperationException", ErrorMessage = problem, IsNonRetriable = true },
            };
            Deliver(parent.InstanceId, failed, parent.ExecutionId);
            return;
        }

        CreateInstance(action.InstanceId, action.Name, action.Version, action.Input, action.Tags, parentInfo, action.ParentTraceContext, null, null);
    }

    /// <summary>Creates an instance whose ExecutionStarted waits in its inbox (or until its scheduled start).</summary>
    Instance CreateInstance(string instanceId, string name, string? version, string? input, MapField<string, string>? tags,
        ParentInstanceInfo? parent, TraceContext? trace, DateTime? scheduledStart, string? executionId)
    {
        var now = Now;
        var instance = new Instance(instanceId)
        {
            Name = _names.Intern(name),
            Version = version,
            ExecutionId = string.IsNullOrEmpty(executionId) ? OrchestrationStateMachine.NewExecutionId() : executionId,
            Status = OrchestrationStatus.Pending,
            CreatedAt = now,
            LastUpdatedAt = now,
            Input = input,
            Tags = tags is { Count: > 0 } ? tags.Clone() : null,
            ParentInstanceId = parent?.OrchestrationInstance?.InstanceId,
            ScheduledStartAt = scheduledStart > now ? scheduledStart : null,
        };

        var start = NewEvent(now);
        start.ExecutionStarted = new ExecutionStartedEvent
        {
            Name = name,
            Version = version,
            Input = input,
            OrchestrationInstance = new OrchestrationInstance { InstanceId = instanceId, ExecutionId = instance.ExecutionId },
            ParentInstance = parent,
            ParentTraceContext = trace,
        };
        if (tags is not null) start.ExecutionStarted.Tags.Add(tags);
        // The store may still hold history of an earlier instance with this id (deleted in the batch now gathering,
        // or a finished instance that is only in the store): the first commit replaces it.
        if (Durable && (_instances.Spilled || _commits.IsDeletePending(instanceId))) instance.PersistedGeneration = -1;
        AddInstance(instance);
        MarkDirty(instance);
        _throughput.CountStarted(now);

        if (instance.ScheduledStartAt is { } at)
        {
            start.ExecutionStarted.ScheduledStartTimestamp = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(at);
            instance.DeferredStart = start;
            ScheduleDeferredStart(instance, start, at);
        }
        else
        {
            instance.Inbox.Add(start);
            MakeReady(instance);
        }

        NotifyWaiters(instance);
        return instance;
    }

    /// <summary>A scheduled start came due: the start event moves to the front of the inbox.</summary>
    void StartDeferred(Instance instance, HistoryEvent start)
    {
        if (!ReferenceEquals(instance.DeferredStart, start)) return;
        instance.DeferredStart = null;
        instance.Inbox.Insert(0, start);
        MarkDirty(instance);
        MakeReady(instance);
    }

    /// <summary>Orchestration names repeat across instances; they share one string per hub.</summary>
    readonly NameTable _names = new();

    /// <summary>
    /// Arms a scheduled start (apart from the start, so its closure is allocated only for one). It holds the id, not the
    /// instance, which may leave memory meanwhile: then the start reads it back when due, and the read arms it again.
    /// </summary>
    void ScheduleDeferredStart(Instance instance, HistoryEvent start, DateTime at)
    {
        string instanceId = instance.InstanceId;
        long incarnation = instance.Incarnation;
        Schedule(at, () =>
        {
            if (_instances.TryGet(instanceId, out var current))
            {
                if (current.Incarnation == incarnation) StartDeferred(current, start);
                return;
            }

            if (_instances.UnfinishedSpilled) LoadWhenDue(instanceId);
        });
    }

    static string StatusName(OrchestrationStatus status) => Statuses.Name(status);
}
