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
    public const string PayloadTooLargeErrorType = "PayloadSizeExceeded";

    /// <summary>Applies a worker's orchestrator result. Returns the payload-limit violation that failed it, if any.</summary>
    public string? CompleteOrchestration(OrchestratorResponse response)
    {
        string? violation;
        lock (_gate)
        {
            if (!_leases.TryGetValue(response.CompletionToken, out var found) || found is not OrchestrationLease lease
                || lease.Instance.InstanceId != response.InstanceId)
            {
                Logs.StaleCompletion(_logger, response.CompletionToken, Name);
                return null;
            }

            if (!lease.FirstChunkSeen)
            {
                lease.FirstChunkSeen = true;
                lease.NumEventsProcessed = response.NumEventsProcessed;
                // Handed back with the next work item, so the worker keeps one orchestration span across episodes.
                if (response.OrchestrationTraceContext is { } trace) lease.Instance.TraceContext = trace;
            }

#pragma warning disable CS0612 // chunked completions are deprecated but still sent by the .NET SDK
            bool partial = response.IsPartial;
#pragma warning restore CS0612
            if (partial)
            {
                (lease.PartialActions ??= new()).AddRange(response.Actions);
                return null;
            }

            IList<OrchestratorAction> actions = response.Actions;
            if (lease.PartialActions is { } earlier)
            {
                earlier.AddRange(response.Actions);
                actions = earlier;
            }

            violation = CheckPayloads(response.CustomStatus, actions);
            EndLease(lease);
            var instance = lease.Instance;
            if (_instances.TryGetValue(instance.InstanceId, out var current) && ReferenceEquals(current, instance))
            {
                if (violation is not null)
                {
                    Logs.OrchestrationRejected(_logger, instance.InstanceId, Name, violation);
                    actions = [FailAction(violation)];
                }

                ApplyEpisode(instance, lease, violation is null ? response.CustomStatus : null, actions);
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
            if (!_leases.TryGetValue(response.CompletionToken, out var found) || found is not ActivityLease lease
                || (response.InstanceId.Length > 0 && (response.InstanceId != lease.Task.InstanceId || response.TaskId != lease.Task.TaskId)))
            {
                Logs.StaleCompletion(_logger, response.CompletionToken, Name);
                return null;
            }

            EndLease(lease);
            var task = lease.Task;
            var e = NewEvent(Now);
            if (response.FailureDetails is { } failure)
            {
                e.TaskFailed = new TaskFailedEvent { TaskScheduledId = task.TaskId, FailureDetails = failure };
            }
            else if ((violation = Errors.CheckPayload(response.Result, "the result of activity", _options.MaxPayloadBytes, task.Name)) is not null)
            {
                e.TaskFailed = new TaskFailedEvent
                {
                    TaskScheduledId = task.TaskId,
                    FailureDetails = new TaskFailureDetails { ErrorType = PayloadTooLargeErrorType, ErrorMessage = violation, IsNonRetriable = true },
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
        var problem = Errors.CheckPayload(customStatus, "customStatus", limit);
        if (problem is not null) return problem;
        // Indexed, not foreach: the list's enumerator is a class, one allocation per call.
        for (int i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            problem = action.OrchestratorActionTypeCase switch
            {
                OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask =>
                    Errors.CheckPayload(action.ScheduleTask.Input, "the input of activity", limit, action.ScheduleTask.Name),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration =>
                    Errors.CheckPayload(action.CreateSubOrchestration.Input, "the input of sub-orchestration", limit, action.CreateSubOrchestration.Name)
                    ?? Errors.CheckInstanceId(action.CreateSubOrchestration.InstanceId, "the sub-orchestration instance id"),
                OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent =>
                    Errors.CheckPayload(action.SendEvent.Data, "the payload of event", limit, action.SendEvent.Name),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration =>
                    Errors.CheckPayload(action.CompleteOrchestration.Result, "the orchestration output", limit),
                OrchestratorAction.OrchestratorActionTypeOneofCase.CreateTimer =>
                    action.CreateTimer.FireAt is null ? "a timer action has no fireAt time" : Errors.CheckTimestamp(action.CreateTimer.FireAt, "the fireAt time of a timer"),
                OrchestratorAction.OrchestratorActionTypeOneofCase.SendEntityMessage =>
                    Errors.CheckTimestamp(action.SendEntityMessage.EntityOperationSignaled?.ScheduledTime, "the scheduled time of an entity signal")
                    ?? Errors.CheckTimestamp(action.SendEntityMessage.EntityOperationCalled?.ScheduledTime, "the scheduled time of an entity call"),
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
            FailureDetails = new TaskFailureDetails { ErrorType = PayloadTooLargeErrorType, ErrorMessage = message, IsNonRetriable = true },
        },
    };

    void Append(Instance instance, HistoryEvent e)
    {
        instance.AppendHistory(e);
    }

    /// <summary>Appends a dispatched event: from its bytes in the work item's <c>newEvents</c> fields when <paramref name="encoded"/>.</summary>
    static void AppendDispatched(Instance instance, HistoryEvent e, ReadOnlySpan<byte> newEvents, ref int position, bool encoded)
    {
        if (!encoded)
        {
            instance.AppendHistory(e);
            return;
        }

        int length = ProtoWire.ReadFieldLength(newEvents, ref position);
        instance.AppendHistory(e, newEvents.Slice(position, length));
        position += length;
    }

    /// <summary>Appends the episode's <c>OrchestratorStarted</c>: as the work item encoded it, when <paramref name="encoded"/>.</summary>
    static void AppendStarted(Instance instance, DateTime startedAt, ReadOnlySpan<byte> newEvents, ref int position, bool encoded)
    {
        if (!encoded)
        {
            EventWire.WriteOrchestratorStarted(instance.AppendEncoded(EventWire.OrchestratorStartedSize(startedAt)), startedAt);
            return;
        }

        int length = ProtoWire.ReadFieldLength(newEvents, ref position);
        newEvents.Slice(position, length).CopyTo(instance.AppendEncoded(length));
        position += length;
    }

    void ApplyEpisode(Instance instance, OrchestrationLease lease, string? customStatus, IList<OrchestratorAction> actions)
    {
        var now = Now;
        instance.FailedDeliveries = 0;

        if (actions.Count > 0 && actions[0].OrchestratorActionTypeCase == OrchestratorAction.OrchestratorActionTypeOneofCase.RewindOrchestration)
        {
            ApplyRewind(instance, lease, actions[0].RewindOrchestration);
            return;
        }

        int processed = lease.DispatchedCount;
        if (lease.NumEventsProcessed is int n && n - 1 < processed) processed = Math.Max(0, n - 1);

        bool suspended = instance.Status == OrchestrationStatus.Suspended;
        ExecutionTerminatedEvent? terminate = null;
        // The events the worker was given go into the history as the work item encoded them, while the inbox still
        // starts with them.
        var dispatched = lease.NewEvents.Span;
        bool encoded = !dispatched.IsEmpty && (processed == 0 || ReferenceEquals(instance.Inbox[0], lease.FirstDispatched));
        int position = 0;
        AppendStarted(instance, lease.StartedAt, dispatched, ref position, encoded);
        for (int i = 0; i < processed; i++)
        {
            var e = instance.Inbox[i];
            AppendDispatched(instance, e, dispatched, ref position, encoded);
            switch (e.EventTypeCase)
            {
                case EventTypeOneofCase.ExecutionSuspended: suspended = true; break;
                case EventTypeOneofCase.ExecutionResumed: suspended = false; break;
                case EventTypeOneofCase.ExecutionTerminated: terminate = e.ExecutionTerminated; break;
            }
        }

        instance.Inbox.RemoveRange(0, processed);
        instance.CustomStatus = customStatus;

        CompleteOrchestrationAction? completion = null;
        for (int i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            if (action.OrchestratorActionTypeCase == OrchestratorAction.OrchestratorActionTypeOneofCase.ScheduleTask)
            {
                ScheduleActivity(instance, action.Id, action.ScheduleTask, now);
                continue;
            }

            var e = NewEvent(now, action.Id);
            switch (action.OrchestratorActionTypeCase)
            {
                case OrchestratorAction.OrchestratorActionTypeOneofCase.CreateTimer:
                    var fireAt = action.CreateTimer.FireAt;
                    e.TimerCreated = new TimerCreatedEvent { FireAt = fireAt };
                    Append(instance, e);
                    ScheduleTimer(instance.InstanceId, instance.ExecutionId, action.Id, fireAt);
                    break;

                case OrchestratorAction.OrchestratorActionTypeOneofCase.CreateSubOrchestration:
                    var sub = action.CreateSubOrchestration;
                    e.SubOrchestrationInstanceCreated = new SubOrchestrationInstanceCreatedEvent
                    {
                        InstanceId = sub.InstanceId, Name = sub.Name, Version = sub.Version, Input = sub.Input, ParentTraceContext = sub.ParentTraceContext,
                    };
                    if (sub.Tags.Count > 0) e.SubOrchestrationInstanceCreated.Tags.Add(sub.Tags);
                    Append(instance, e);
                    StartChild(instance, action.Id, sub);
                    break;

                case OrchestratorAction.OrchestratorActionTypeOneofCase.SendEvent:
                    var send = action.SendEvent;
                    var target = send.Instance?.InstanceId ?? "";
                    e.EventSent = new EventSentEvent { InstanceId = target, Name = send.Name, Input = send.Data };
                    Append(instance, e);
                    if (EntityIds.IsEntityId(target))
                    {
                        var entityMessage = LegacyEntityCodec.Decode(send.Name, send.Data, target, instance.InstanceId, instance.ExecutionId, out var due);
                        if (entityMessage is not null) SendToEntity(EntityIds.Normalize(target), entityMessage, due);
                        break;
                    }

                    var raised = NewEvent(now);
                    raised.EventRaised = new EventRaisedEvent { Name = send.Name, Input = send.Data };
                    Deliver(target, raised, send.Instance?.ExecutionId);
                    break;

                case OrchestratorAction.OrchestratorActionTypeOneofCase.TerminateOrchestration:
                    var term = action.TerminateOrchestration;
                    var terminated = NewEvent(now);
                    terminated.ExecutionTerminated = new ExecutionTerminatedEvent { Input = term.Reason, Recurse = term.Recurse };
                    Deliver(term.InstanceId, terminated);
                    break;

                case OrchestratorAction.OrchestratorActionTypeOneofCase.SendEntityMessage:
                    RecordEntityMessage(instance, action, e);
                    RouteEntityAction(instance, action.SendEntityMessage);
                    break;

                case OrchestratorAction.OrchestratorActionTypeOneofCase.CompleteOrchestration:
                    completion = action.CompleteOrchestration;
                    if (completion.OrchestrationStatus != OrchestrationStatus.ContinuedAsNew)
                    {
                        e.ExecutionCompleted = new ExecutionCompletedEvent
                        {
                            OrchestrationStatus = completion.OrchestrationStatus, Result = completion.Result, FailureDetails = completion.FailureDetails,
                        };
                        Append(instance, e);
                    }

                    break;
            }
        }

        AppendOrchestratorCompleted(instance, now);

        if (completion is null)
        {
            instance.Status = suspended ? OrchestrationStatus.Suspended : OrchestrationStatus.Running;
        }
        else if (completion.OrchestrationStatus == OrchestrationStatus.ContinuedAsNew)
        {
            ContinueAsNew(instance, completion, now);
        }
        else
        {
            Finish(instance, completion.OrchestrationStatus, completion.Result, completion.FailureDetails, now);
            if (completion.OrchestrationStatus == OrchestrationStatus.Terminated && terminate is { Recurse: true })
            {
                TerminateChildren(instance, terminate.Input, now);
            }
        }

        // The history stays as bytes only (the store's snapshot reads those too).
        instance.ReleaseHistory();
        HoldForResults(instance, now);

        instance.LastUpdatedAt = now;
        MarkDirty(instance);
        NotifyWaiters(instance);
        MakeReady(instance);
    }

    /// <summary>Histories from this many events on may wait for more activity results before their next episode.</summary>
    internal const int HoldFromHistoryEvents = 2_000;

    /// <summary>
    /// Every episode makes the worker replay the whole history, so an orchestration with a long history and many
    /// activities still out (a large fan-out) would otherwise replay it for every handful of results that come in.
    /// Its next episode waits for more: until every open activity has answered or another message arrives, at most
    /// 0.1 ms per history event (the SDKs replay an event in a few tens of microseconds), capped at
    /// <c>Scheduler:MaxFanInHold</c> (2 s). Shorter histories, and orchestrations waiting for a single activity (a
    /// sequence), are never held.
    /// </summary>
    void HoldForResults(Instance instance, DateTime now)
    {
        int events = instance.HistoryCount;
        var max = _options.MaxFanInHold;
        if (instance.IsTerminal || instance.OpenActivities < 2 || events < HoldFromHistoryEvents || max <= TimeSpan.Zero)
        {
            instance.HeldUntil = default;
            return;
        }

        var hold = TimeSpan.FromMilliseconds(events / 10.0);
        instance.HeldUntil = now + (hold < max ? hold : max);
    }

    /// <summary>Records a <c>TaskScheduled</c> event for <paramref name="schedule"/> and queues the activity.</summary>
    void ScheduleActivity(Instance instance, int taskId, ScheduleTaskAction schedule, DateTime now)
    {
        int size = EventWire.TaskScheduledSize(taskId, now, schedule, out int eventSize);
        EventWire.WriteTaskScheduled(instance.AppendEncoded(size), taskId, now, schedule, eventSize);
        EnqueueActivity(NewActivityTask(instance, taskId, schedule.Name, schedule.Version, schedule.Input, schedule.ParentTraceContext, schedule.Tags, _epoch));
        instance.OpenActivities++;
    }

    static void AppendOrchestratorCompleted(Instance instance, DateTime now) =>
        EventWire.WriteOrchestratorCompleted(instance.AppendEncoded(EventWire.OrchestratorCompletedSize(now)), now);

    /// <summary>The activity work a task of the current execution, scheduled with these parts, asks for.</summary>
    static ActivityTask NewActivityTask(Instance instance, int taskId, string name, string? version, string? input, TraceContext? traceContext,
        MapField<string, string> tags, long epoch)
    {
        var executionId = instance.ExecutionId;
        return new ActivityTask
        {
            InstanceId = instance.InstanceId,
            ExecutionId = executionId,
            TaskId = taskId,
            Name = name,
            ParentTraceContext = traceContext,
            Request = OutboundWorkItem.EncodeActivityRequest(name, version, input, traceContext, tags, instance.InstanceId, executionId, taskId),
            Epoch = epoch,
        };
    }

    void ScheduleTimer(string instanceId, string executionId, int timerId, Google.Protobuf.WellKnownTypes.Timestamp fireAt)
    {
        Schedule(fireAt.ToDateTime(), () =>
        {
            var fired = NewEvent(Now);
            fired.TimerFired = new TimerFiredEvent { FireAt = fireAt, TimerId = timerId };
            Deliver(instanceId, fired, executionId);
        });
    }

    /// <summary>Ends an execution: records the outcome, drops pending messages, tells the parent.</summary>
    void Finish(Instance instance, OrchestrationStatus status, string? result, TaskFailureDetails? failure, DateTime now)
    {
        instance.Status = status;
        instance.Output = result;
        instance.Failure = failure;
        instance.CompletedAt = now;
        MarkDirty(instance);
        TrackFinished(instance);
        CountFinished();
        // A finished instance is kept only for reads: drop what only a running one needs.
        instance.DropInbox();
        instance.TraceContext = null;
        instance.DeferredStart = null;
        instance.ReplayRequested = false;
        ReleaseLocksHeldBy(instance.InstanceId);

        var parent = instance.StartEvent?.ParentInstance;
        // Its history is complete: kept packed from now on. With a durable store the commit's snapshot packs it,
        // after reading the events it has not stored yet.
        if (!_durable) instance.PackHistory();
        if (parent?.OrchestrationInstance is not { } parentInstance) return;
        var e = NewEvent(now);
        if (status == OrchestrationStatus.Completed)
        {
            e.SubOrchestrationInstanceCompleted = new SubOrchestrationInstanceCompletedEvent { TaskScheduledId = parent.TaskScheduledId, Result = result };
        }
        else
        {
            e.SubOrchestrationInstanceFailed = new SubOrchestrationInstanceFailedEvent
            {
                TaskScheduledId = parent.TaskScheduledId,
                FailureDetails = failure ?? new TaskFailureDetails
                {
                    ErrorType = "OrchestrationTerminated",
                    ErrorMessage = $"Sub-orchestration '{instance.InstanceId}' was terminated{(result is null ? "" : ": " + result)}",
                    IsNonRetriable = true,
                },
            };
        }

        Deliver(parentInstance.InstanceId, e, parentInstance.ExecutionId);
    }

    void TerminateChildren(Instance instance, string? reason, DateTime now)
    {
        foreach (var h in instance.History)
        {
            if (h.EventTypeCase != EventTypeOneofCase.SubOrchestrationInstanceCreated) continue;
            var childId = h.SubOrchestrationInstanceCreated.InstanceId;
            if (!_instances.TryGetValue(childId, out var child) || child.IsTerminal) continue;
            TerminateInstance(child, reason, recursive: true, now);
        }
    }

    void ContinueAsNew(Instance instance, CompleteOrchestrationAction action, DateTime now)
    {
        var previous = instance.StartEvent!;
        var executionId = NewExecutionId();
        var start = NewEvent(now);
        start.ExecutionStarted = new ExecutionStartedEvent
        {
            Name = previous.Name,
            Version = action.NewVersion ?? previous.Version,
            Input = action.Result,
            OrchestrationInstance = new OrchestrationInstance { InstanceId = instance.InstanceId, ExecutionId = executionId },
            ParentInstance = previous.ParentInstance,
            ParentTraceContext = previous.ParentTraceContext,
        };
        start.ExecutionStarted.Tags.Add(previous.Tags);

        instance.History = new List<HistoryEvent>();
        instance.HistoryGeneration++;
        instance.OpenActivities = 0;
        instance.ExecutionId = executionId;
        instance.Version = start.ExecutionStarted.Version;
        instance.Input = action.Result;
        instance.Output = null;
        instance.Failure = null;
        instance.Status = OrchestrationStatus.Running;
        // The new execution sees its start, then the events carried over, then whatever arrived meanwhile
        // (including events the old execution sent to itself).
        instance.Inbox.InsertRange(0, [start, .. action.CarryoverEvents]);
    }

    void ApplyRewind(Instance instance, OrchestrationLease lease, RewindOrchestrationAction rewind)
    {
        instance.Inbox.RemoveRange(0, Math.Min(lease.DispatchedCount, instance.Inbox.Count));
        instance.History = new List<HistoryEvent>(rewind.NewHistory.Count);
        instance.HistoryGeneration++;
        instance.OpenActivities = 0;
        foreach (var e in rewind.NewHistory) Append(instance, e);

        var start = instance.StartEvent;
        if (start?.OrchestrationInstance?.ExecutionId is { Length: > 0 } executionId) instance.ExecutionId = executionId;
        instance.Status = OrchestrationStatus.Running;
        instance.Output = null;
        instance.Failure = null;
        instance.CompletedAt = null;

        var finished = new HashSet<int>();
        foreach (var e in instance.History)
        {
            if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceCompleted) finished.Add(e.SubOrchestrationInstanceCompleted.TaskScheduledId);
            else if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceFailed) finished.Add(e.SubOrchestrationInstanceFailed.TaskScheduledId);
        }

        foreach (var e in instance.History)
        {
            if (e.EventTypeCase != EventTypeOneofCase.SubOrchestrationInstanceCreated || finished.Contains(e.EventId)) continue;
            var created = e.SubOrchestrationInstanceCreated;
            if (_instances.TryGetValue(created.InstanceId, out var child))
            {
                if (child.Status == OrchestrationStatus.Failed) RewindInstance(child, null, instance.ExecutionId);
            }
            else
            {
                StartChild(instance, e.EventId, new CreateSubOrchestrationAction
                {
                    InstanceId = created.InstanceId, Name = created.Name, Version = created.Version, Input = created.Input,
                    ParentTraceContext = created.ParentTraceContext, Tags = { created.Tags },
                });
            }
        }

        instance.ReplayRequested = true;
        instance.LastUpdatedAt = Now;
        MarkDirty(instance);
        NotifyWaiters(instance);
        MakeReady(instance);
    }

    void StartChild(Instance parent, int taskScheduledId, CreateSubOrchestrationAction action)
    {
        var parentInfo = new ParentInstanceInfo
        {
            TaskScheduledId = taskScheduledId,
            Name = parent.Name,
            Version = parent.Version,
            OrchestrationInstance = new OrchestrationInstance { InstanceId = parent.InstanceId, ExecutionId = parent.ExecutionId },
        };

        string? problem = Errors.CheckInstanceId(action.InstanceId, "the sub-orchestration instance id");
        if (problem is null && _instances.TryGetValue(action.InstanceId, out var existing))
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
            Name = InternName(name),
            Version = version,
            ExecutionId = string.IsNullOrEmpty(executionId) ? NewExecutionId() : executionId,
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
        if (_durable && (_spilled || _deletedInstances.Contains(instanceId))) instance.PersistedGeneration = -1;
        AddInstance(instance);
        MarkDirty(instance);
        CountStarted();

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
    readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);

    string InternName(string name)
    {
        if (_names.TryGetValue(name, out var shared)) return shared;
        if (_names.Count < 10_000) _names[name] = name;
        return name;
    }

    // Apart from the start, so its closure is allocated only for a deferred start.
    void ScheduleDeferredStart(Instance instance, HistoryEvent start, DateTime at) => Schedule(at, () => StartDeferred(instance, start));

    static string NewExecutionId() => Guid.NewGuid().ToString("N");

    static string StatusName(OrchestrationStatus status) => Statuses.Name(status);
}
