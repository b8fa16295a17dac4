using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;
using ActionType = Microsoft.DurableTask.Protobuf.OrchestratorAction.OrchestratorActionTypeOneofCase;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// The rules of one orchestration instance: what a message arriving, a worker's episode, a rewind or a termination
/// does to its state, and which effects follow (activities, timers, children, messages to other instances, the end
/// of an execution). It holds no lock, touches no store and reads no clock: the time comes in as an argument, and the
/// effects go out through <see cref="IOrchestrationEffects"/>, in order, without allocating per effect.
/// What an instance still owes (activities, timers, open activities) is derived from its history by
/// <see cref="ResumeOwedWork"/> and kept up to date by the same counting rule (<see cref="OpensActivity"/>,
/// <see cref="ClosesActivity"/>) as messages arrive and episodes schedule.
/// </summary>
public sealed class OrchestrationStateMachine(TimeSpan maxFanInHold, Func<string>? newExecutionId = null)
{
    /// <summary>Histories from this many events on may wait for more activity results before their next episode.</summary>
    public const int HoldFromHistoryEvents = 2_000;

    readonly Func<string> _newExecutionId = newExecutionId ?? NewExecutionId;

    /// <summary>An execution id as the scheduler makes them: a GUID in its 32-digit form.</summary>
    public static string NewExecutionId() => Guid.NewGuid().ToString("N");

    public static HistoryEvent NewEvent(DateTime now, int eventId = -1) =>
        new() { EventId = eventId, Timestamp = Timestamp.FromDateTime(now) };

    /// <summary>True for the event that opens an activity: the orchestration is owed its result.</summary>
    public static bool OpensActivity(EventTypeOneofCase type) => type == EventTypeOneofCase.TaskScheduled;

    /// <summary>True for the events that close an activity: its result, delivered.</summary>
    public static bool ClosesActivity(EventTypeOneofCase type) => type is EventTypeOneofCase.TaskCompleted or EventTypeOneofCase.TaskFailed;

    /// <summary>
    /// Takes a message into the instance's inbox, unless it is for another execution (<paramref name="executionId"/>,
    /// when given) or the instance has finished (only a rewind reaches a finished instance).
    /// </summary>
    /// <returns>false when the message was dropped.</returns>
    public static bool Accept(InstanceState instance, HistoryEvent message, string? executionId)
    {
        if (executionId is not null && executionId.Length > 0 && executionId != instance.ExecutionId) return false;
        if (instance.IsTerminal && message.EventTypeCase != EventTypeOneofCase.ExecutionRewound) return false;
        instance.Inbox.Add(message);
        if (ClosesActivity(message.EventTypeCase))
        {
            if (instance.OpenActivities > 0) instance.OpenActivities--;
            // The last result ends a hold at once: the orchestration has everything it waited for.
            if (instance.OpenActivities == 0) instance.HeldUntil = default;
        }
        else
        {
            // Anything else (an event, a timer, termination, ...) is not worth waiting with.
            instance.HeldUntil = default;
        }

        return true;
    }

    /// <summary>The message an event sent to an orchestration raises there.</summary>
    public static HistoryEvent EventRaised(string name, string? input, DateTime now)
    {
        var raised = NewEvent(now);
        raised.EventRaised = new EventRaisedEvent { Name = name, Input = input };
        return raised;
    }

    /// <summary>The message a durable timer delivers when it fires.</summary>
    public static HistoryEvent TimerFired(int timerId, Timestamp fireAt, DateTime now)
    {
        var fired = NewEvent(now);
        fired.TimerFired = new TimerFiredEvent { FireAt = fireAt, TimerId = timerId };
        return fired;
    }

    /// <summary>
    /// Applies a worker's episode: the messages it processed and the events of its actions go into the history, the
    /// actions' effects go out, and the instance runs on, continues as new or ends.
    /// </summary>
    public void ApplyEpisode(InstanceState instance, in Episode episode, IOrchestrationEffects effects, DateTime now)
    {
        var actions = episode.Actions;
        if (actions.Count > 0 && actions[0].OrchestratorActionTypeCase == ActionType.RewindOrchestration)
        {
            ApplyRewind(instance, episode.Processed, actions[0].RewindOrchestration, effects, now);
            return;
        }

        int processed = episode.Processed;
        bool suspended = instance.Status == OrchestrationStatus.Suspended;
        ExecutionTerminatedEvent? terminate = null;
        // The events the worker was given go into the history as the work item encoded them, when it did.
        var dispatched = episode.DispatchedEvents.Span;
        bool encoded = !dispatched.IsEmpty;
        int position = 0;
        AppendStarted(instance, episode.StartedAt, dispatched, ref position, encoded);
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
        instance.CustomStatus = episode.CustomStatus;

        CompleteOrchestrationAction? completion = null;
        // Indexed, not foreach: the list's enumerator is a class, one allocation per call.
        for (int i = 0; i < actions.Count; i++)
        {
            var action = actions[i];
            if (action.OrchestratorActionTypeCase == ActionType.ScheduleTask)
            {
                ScheduleActivity(instance, action.Id, action.ScheduleTask, effects, now);
                continue;
            }

            var e = NewEvent(now, action.Id);
            switch (action.OrchestratorActionTypeCase)
            {
                case ActionType.CreateTimer:
                    var fireAt = action.CreateTimer.FireAt;
                    e.TimerCreated = new TimerCreatedEvent { FireAt = fireAt };
                    instance.AppendHistory(e);
                    effects.ArmTimer(instance, action.Id, fireAt);
                    break;

                case ActionType.CreateSubOrchestration:
                    var sub = action.CreateSubOrchestration;
                    e.SubOrchestrationInstanceCreated = new SubOrchestrationInstanceCreatedEvent
                    {
                        InstanceId = sub.InstanceId, Name = sub.Name, Version = sub.Version, Input = sub.Input, ParentTraceContext = sub.ParentTraceContext,
                    };
                    if (sub.Tags.Count > 0) e.SubOrchestrationInstanceCreated.Tags.Add(sub.Tags);
                    instance.AppendHistory(e);
                    effects.StartChild(instance, action.Id, sub);
                    break;

                case ActionType.SendEvent:
                    var send = action.SendEvent;
                    var target = send.Instance?.InstanceId ?? "";
                    e.EventSent = new EventSentEvent { InstanceId = target, Name = send.Name, Input = send.Data };
                    instance.AppendHistory(e);
                    effects.SendEvent(instance, target, send.Instance?.ExecutionId, send.Name, send.Data);
                    break;

                case ActionType.TerminateOrchestration:
                    var term = action.TerminateOrchestration;
                    var terminated = NewEvent(now);
                    terminated.ExecutionTerminated = new ExecutionTerminatedEvent { Input = term.Reason, Recurse = term.Recurse };
                    effects.SendToInstance(term.InstanceId, null, terminated);
                    break;

                case ActionType.SendEntityMessage:
                    if (RecordEntityMessage(action.SendEntityMessage, e)) instance.AppendHistory(e);
                    effects.SendEntityMessage(instance, action.SendEntityMessage);
                    break;

                case ActionType.CompleteOrchestration:
                    completion = action.CompleteOrchestration;
                    if (completion.OrchestrationStatus != OrchestrationStatus.ContinuedAsNew)
                    {
                        e.ExecutionCompleted = new ExecutionCompletedEvent
                        {
                            OrchestrationStatus = completion.OrchestrationStatus, Result = completion.Result, FailureDetails = completion.FailureDetails,
                        };
                        instance.AppendHistory(e);
                    }

                    break;
            }
        }

        EventWire.WriteOrchestratorCompleted(instance.AppendEncoded(EventWire.OrchestratorCompletedSize(now)), now);

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
            Finish(instance, completion.OrchestrationStatus, completion.Result, completion.FailureDetails, effects, now);
            if (completion.OrchestrationStatus == OrchestrationStatus.Terminated && terminate is { Recurse: true })
            {
                TerminateChildren(instance, terminate.Input, effects);
            }
        }

        // The history stays as bytes only (the store's snapshot reads those too).
        instance.ReleaseHistory();
        HoldForResults(instance, now);
        instance.LastUpdatedAt = now;
    }

    /// <summary>
    /// Every episode makes the worker replay the whole history, so an orchestration with a long history and many
    /// activities still out (a large fan-out) would otherwise replay it for every handful of results that come in.
    /// Its next episode waits for more: until every open activity has answered or another message arrives, at most
    /// 0.1 ms per history event (the SDKs replay an event in a few tens of microseconds), capped at
    /// <c>Scheduler:MaxFanInHold</c> (2 s). Shorter histories, and orchestrations waiting for a single activity (a
    /// sequence), are never held.
    /// </summary>
    void HoldForResults(InstanceState instance, DateTime now)
    {
        int events = instance.HistoryCount;
        if (instance.IsTerminal || instance.OpenActivities < 2 || events < HoldFromHistoryEvents || maxFanInHold <= TimeSpan.Zero)
        {
            instance.HeldUntil = default;
            return;
        }

        var hold = TimeSpan.FromMilliseconds(events / 10.0);
        instance.HeldUntil = now + (hold < maxFanInHold ? hold : maxFanInHold);
    }

    /// <summary>Records a <c>TaskScheduled</c> event for <paramref name="schedule"/> and asks for the activity.</summary>
    static void ScheduleActivity(InstanceState instance, int taskId, ScheduleTaskAction schedule, IOrchestrationEffects effects, DateTime now)
    {
        int size = EventWire.TaskScheduledSize(taskId, now, schedule, out int eventSize);
        EventWire.WriteTaskScheduled(instance.AppendEncoded(size), taskId, now, schedule, eventSize);
        instance.OpenActivities++;
        effects.ScheduleActivity(instance, taskId, schedule.Name, schedule.Version, schedule.Input, schedule.ParentTraceContext, schedule.Tags, recovered: false);
    }

    /// <summary>Appends a dispatched event: from its bytes in the work item's <c>newEvents</c> fields when <paramref name="encoded"/>.</summary>
    static void AppendDispatched(InstanceState instance, HistoryEvent e, ReadOnlySpan<byte> newEvents, ref int position, bool encoded)
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
    static void AppendStarted(InstanceState instance, DateTime startedAt, ReadOnlySpan<byte> newEvents, ref int position, bool encoded)
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

    /// <summary>Fills <paramref name="e"/> with the entity message an action sends; false for an action of no known kind.</summary>
    static bool RecordEntityMessage(SendEntityMessageAction message, HistoryEvent e)
    {
        switch (message.EntityMessageTypeCase)
        {
            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityOperationSignaled:
                e.EntityOperationSignaled = message.EntityOperationSignaled;
                return true;
            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityOperationCalled:
                e.EntityOperationCalled = message.EntityOperationCalled;
                return true;
            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityLockRequested:
                e.EntityLockRequested = message.EntityLockRequested;
                return true;
            case SendEntityMessageAction.EntityMessageTypeOneofCase.EntityUnlockSent:
                e.EntityUnlockSent = message.EntityUnlockSent;
                return true;
            default:
                return false;
        }
    }

    /// <summary>Ends an execution: records the outcome, drops what only a running instance needs, tells the parent.</summary>
    static void Finish(InstanceState instance, OrchestrationStatus status, string? result, TaskFailureDetails? failure, IOrchestrationEffects effects, DateTime now)
    {
        instance.Status = status;
        instance.Output = result;
        instance.Failure = failure;
        instance.CompletedAt = now;
        // A finished instance is kept only for reads: drop what only a running one needs.
        instance.DropInbox();
        instance.TraceContext = null;
        instance.DeferredStart = null;
        instance.ReplayRequested = false;
        instance.OpenActivities = 0;
        var parent = instance.StartEvent?.ParentInstance;
        effects.ExecutionEnded(instance);
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

        effects.SendToInstance(parentInstance.InstanceId, parentInstance.ExecutionId, e);
    }

    static void TerminateChildren(InstanceState instance, string? reason, IOrchestrationEffects effects)
    {
        foreach (var h in instance.History)
        {
            if (h.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceCreated) effects.TerminateChild(h.SubOrchestrationInstanceCreated.InstanceId, reason);
        }
    }

    /// <summary>
    /// Ends an instance as terminated without an episode: one that never ran (nothing in a worker can react to a
    /// termination), or any instance a client terminates at once (an emergency termination does not wait for the
    /// orchestrator code). Its start (when the history does not hold it yet), the termination and the completion go
    /// into its history, the messages it has not processed are dropped, and it finishes as terminated.
    /// </summary>
    public static void TerminateAtOnce(InstanceState instance, string? reason, bool recurse, IOrchestrationEffects effects, DateTime now)
    {
        if (!instance.HasStarted)
        {
            HistoryEvent? start = instance.DeferredStart;
            foreach (var e in instance.Inbox)
            {
                if (e.EventTypeCase == EventTypeOneofCase.ExecutionStarted)
                {
                    start = e;
                    break;
                }
            }

            if (start is not null) instance.AppendHistory(start);
        }

        var terminated = NewEvent(now);
        terminated.ExecutionTerminated = new ExecutionTerminatedEvent { Input = reason, Recurse = recurse };
        instance.AppendHistory(terminated);
        var completed = NewEvent(now);
        completed.ExecutionCompleted = new ExecutionCompletedEvent { OrchestrationStatus = OrchestrationStatus.Terminated, Result = reason };
        instance.AppendHistory(completed);
        Finish(instance, OrchestrationStatus.Terminated, reason, null, effects, now);
        instance.ReleaseHistory();
        instance.LastUpdatedAt = now;
    }

    void ContinueAsNew(InstanceState instance, CompleteOrchestrationAction action, DateTime now)
    {
        var previous = instance.StartEvent!;
        var executionId = _newExecutionId();
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
        // The .NET SDK never sets tags when it continues as new (its ContinueAsNewOptions has none) and the reference
        // backends carry the tags over, so no tags means "keep them"; tags given replace them.
        bool newTags = action.Tags.Count > 0;
        start.ExecutionStarted.Tags.Add(newTags ? action.Tags : previous.Tags);
        if (newTags) instance.Tags = action.Tags.Clone();

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

    /// <summary>
    /// A worker's rewind of a failed instance: the history it sent replaces the old one, the instance runs again, and
    /// every sub-orchestration still without a result is rewound or started again.
    /// </summary>
    static void ApplyRewind(InstanceState instance, int processed, RewindOrchestrationAction rewind, IOrchestrationEffects effects, DateTime now)
    {
        instance.Inbox.RemoveRange(0, Math.Min(processed, instance.Inbox.Count));
        instance.History = new List<HistoryEvent>(rewind.NewHistory.Count);
        instance.HistoryGeneration++;
        foreach (var e in rewind.NewHistory) instance.AppendHistory(e);

        var start = instance.StartEvent;
        if (start?.OrchestrationInstance?.ExecutionId is { Length: > 0 } executionId) instance.ExecutionId = executionId;
        instance.Status = OrchestrationStatus.Running;
        instance.Output = null;
        instance.Failure = null;
        instance.CompletedAt = null;
        instance.OpenActivities = 0;
        // The new history was not dispatched yet: a replay asks the worker to run from it.
        instance.ReplayRequested = true;

        var finished = new HashSet<int>();
        foreach (var e in instance.History)
        {
            if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceCompleted) finished.Add(e.SubOrchestrationInstanceCompleted.TaskScheduledId);
            else if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceFailed) finished.Add(e.SubOrchestrationInstanceFailed.TaskScheduledId);
        }

        foreach (var e in instance.History)
        {
            if (e.EventTypeCase != EventTypeOneofCase.SubOrchestrationInstanceCreated || finished.Contains(e.EventId)) continue;
            effects.RewindChild(instance, e.EventId, e.SubOrchestrationInstanceCreated);
        }

        instance.LastUpdatedAt = now;
    }

    /// <summary>
    /// A client's rewind of a failed instance (or of a failed child, for its parent's rewind): it runs again, and its
    /// worker is given an <c>ExecutionRewound</c> event to rebuild its history from. Returns that event, to deliver.
    /// </summary>
    public static HistoryEvent BeginRewind(InstanceState instance, string? reason, string? parentExecutionId, DateTime now)
    {
        instance.Status = OrchestrationStatus.Running;
        instance.CompletedAt = null;
        instance.LastUpdatedAt = now;
        var e = NewEvent(now);
        e.ExecutionRewound = new ExecutionRewoundEvent { Reason = reason };
        if (parentExecutionId is not null)
        {
            e.ExecutionRewound.ParentExecutionId = parentExecutionId;
            e.ExecutionRewound.InstanceId = instance.InstanceId;
        }

        return e;
    }

    /// <summary>
    /// What the instance still owes, derived from its history and inbox: every activity scheduled and not answered
    /// is asked for again, every timer created and not fired is armed (one that came due meanwhile fires at once), and
    /// the open activity count is what the history says. Used when an instance is restored from the store.
    /// </summary>
    public static void ResumeOwedWork(InstanceState instance, IOrchestrationEffects effects)
    {
        if (instance.IsTerminal || instance.HistoryCount == 0)
        {
            instance.OpenActivities = 0;
            return;
        }

        var answeredTasks = new HashSet<int>();
        var firedTimers = new HashSet<int>();
        var history = instance.History;
        CountAnswers(history, answeredTasks, firedTimers);
        if (instance.InboxCount > 0) CountAnswers(instance.Inbox, answeredTasks, firedTimers);

        int open = 0;
        foreach (var e in history)
        {
            if (OpensActivity(e.EventTypeCase) && !answeredTasks.Contains(e.EventId))
            {
                // Owed until its result arrives: counted as any newly scheduled activity is.
                open++;
                var task = e.TaskScheduled;
                effects.ScheduleActivity(instance, e.EventId, task.Name, task.Version, task.Input, task.ParentTraceContext, task.Tags, recovered: true);
            }
            else if (e.EventTypeCase == EventTypeOneofCase.TimerCreated && !firedTimers.Contains(e.EventId))
            {
                effects.ArmTimer(instance, e.EventId, e.TimerCreated.FireAt);
            }
        }

        instance.OpenActivities = open;
        instance.ReleaseHistory();
    }

    /// <summary>
    /// True when the instance may wait out of memory: it has started, has no message to process, and its history waits
    /// for no activity and no entity (an entity call or lock request, in either encoding, is taken as waiting: its answer
    /// comes from the hub, which holds no such work for an instance out of memory). What it may wait for is an external
    /// event, a termination, a suspend or resume, its sub-orchestrations (a child's completion reads its parent back
    /// before it is applied) and its timers, the earliest of which is <paramref name="nextTimer"/>. Reads the whole
    /// history.
    /// </summary>
    public static bool MayWaitOutOfMemory(InstanceState instance, out DateTime? nextTimer)
    {
        nextTimer = null;
        if (instance.IsTerminal || !instance.HasStarted || instance.InboxCount > 0 || instance.ReplayRequested || instance.OpenActivities > 0) return false;
        int activities = 0;
        Dictionary<int, Timestamp>? timers = null;
        foreach (var e in instance.CopyHistory())
        {
            switch (e.EventTypeCase)
            {
                case EventTypeOneofCase.TaskScheduled: activities++; break;
                case EventTypeOneofCase.TaskCompleted or EventTypeOneofCase.TaskFailed: activities--; break;
                case EventTypeOneofCase.TimerCreated: (timers ??= new())[e.EventId] = e.TimerCreated.FireAt; break;
                case EventTypeOneofCase.TimerFired: timers?.Remove(e.TimerFired.TimerId); break;
                case EventTypeOneofCase.EntityOperationCalled or EventTypeOneofCase.EntityLockRequested: return false;
                // Messages to entities in the older encoding: an event sent to an entity id ("@name@key").
                case EventTypeOneofCase.EventSent when e.EventSent.InstanceId.StartsWith('@'): return false;
            }
        }

        if (activities > 0) return false;
        if (timers is not null)
        {
            foreach (var fireAt in timers.Values)
            {
                var at = fireAt?.ToDateTime() ?? DateTime.MinValue;
                if (nextTimer is null || at < nextTimer) nextTimer = at;
            }
        }

        return true;
    }

    static void CountAnswers(List<HistoryEvent> events, HashSet<int> answeredTasks, HashSet<int> firedTimers)
    {
        foreach (var e in events)
        {
            switch (e.EventTypeCase)
            {
                case EventTypeOneofCase.TaskCompleted: answeredTasks.Add(e.TaskCompleted.TaskScheduledId); break;
                case EventTypeOneofCase.TaskFailed: answeredTasks.Add(e.TaskFailed.TaskScheduledId); break;
                case EventTypeOneofCase.TimerFired: firedTimers.Add(e.TimerFired.TimerId); break;
            }
        }
    }
}

/// <summary>
/// One worker's episode of an instance, as <see cref="OrchestrationStateMachine.ApplyEpisode"/> takes it: when it
/// started, how many inbox messages (from the front) it processed, those messages as the work item encoded them (empty
/// when the inbox no longer starts with them, so they are encoded again), the custom status and the actions.
/// </summary>
public readonly record struct Episode(DateTime StartedAt, int Processed, ReadOnlyMemory<byte> DispatchedEvents, string? CustomStatus,
    IList<OrchestratorAction> Actions);
