using DurableTask.Scheduler.Orchestration;
using Microsoft.DurableTask.Protobuf;
using EventType = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.Api;

/// <summary>Maps orchestration state and history onto the API's JSON shapes, and derives the timeline from history.</summary>
static class HistoryViews
{
    const int MaxFailureDepth = 32;

    public static Payload? Cut(string? value, int limit)
    {
        if (value is null) return null;
        return value.Length <= limit ? new Payload(value, value.Length, false) : new Payload(value[..limit], value.Length, true);
    }

    public static Failure? ToFailure(TaskFailureDetails? details, int depth = 0)
    {
        if (details is null) return null;
        var inner = depth < MaxFailureDepth ? ToFailure(details.InnerFailure, depth + 1) : null;
        return new Failure(details.ErrorType, details.ErrorMessage, details.StackTrace, details.IsNonRetriable, inner);
    }

    public static string StatusName(OrchestrationStatus status) => Statuses.Name(status);

    public static bool IsTerminal(OrchestrationStatus status) => Statuses.IsTerminal(status);

    static Dictionary<string, string>? Tags(OrchestrationState state) =>
        state.Tags.Count == 0 ? null : new Dictionary<string, string>(state.Tags);

    static double DurationMs(OrchestrationState state, DateTime now)
    {
        var created = state.CreatedTimestamp.ToDateTime();
        var end = state.CompletedTimestamp?.ToDateTime() ?? (IsTerminal(state.OrchestrationStatus) ? state.LastUpdatedTimestamp.ToDateTime() : now);
        return Math.Max(0, (end - created).TotalMilliseconds);
    }

    public static OrchestrationSummary ToSummary(OrchestrationState s, DateTime now) => new(
        s.InstanceId, s.Name, s.Version, StatusName(s.OrchestrationStatus),
        s.CreatedTimestamp.ToDateTime(), s.LastUpdatedTimestamp.ToDateTime(), s.CompletedTimestamp?.ToDateTime(),
        s.ScheduledStartTimestamp?.ToDateTime(), DurationMs(s, now), s.ParentInstanceId, s.ExecutionId, Tags(s),
        ToFailure(s.FailureDetails));

    public static OrchestrationDetail ToDetail(OrchestrationState s, DateTime now, int payloadLimit) => new(
        s.InstanceId, s.Name, s.Version, StatusName(s.OrchestrationStatus),
        s.CreatedTimestamp.ToDateTime(), s.LastUpdatedTimestamp.ToDateTime(), s.CompletedTimestamp?.ToDateTime(),
        s.ScheduledStartTimestamp?.ToDateTime(), DurationMs(s, now), s.ParentInstanceId, s.ExecutionId, Tags(s),
        ToFailure(s.FailureDetails), Cut(s.Input, payloadLimit), Cut(s.Output, payloadLimit), Cut(s.CustomStatus, payloadLimit));

    /// <summary>The payload an event carries (input, result, reason), or null.</summary>
    public static string? PayloadOf(HistoryEvent e) => e.EventTypeCase switch
    {
        EventType.ExecutionStarted => e.ExecutionStarted.Input,
        EventType.ExecutionCompleted => e.ExecutionCompleted.Result,
        EventType.ExecutionTerminated => e.ExecutionTerminated.Input,
        EventType.TaskScheduled => e.TaskScheduled.Input,
        EventType.TaskCompleted => e.TaskCompleted.Result,
        EventType.SubOrchestrationInstanceCreated => e.SubOrchestrationInstanceCreated.Input,
        EventType.SubOrchestrationInstanceCompleted => e.SubOrchestrationInstanceCompleted.Result,
        EventType.EventSent => e.EventSent.Input,
        EventType.EventRaised => e.EventRaised.Input,
        EventType.ContinueAsNew => e.ContinueAsNew.Input,
        EventType.ExecutionSuspended => e.ExecutionSuspended.Input,
        EventType.ExecutionResumed => e.ExecutionResumed.Input,
        EventType.ExecutionRewound => e.ExecutionRewound.Reason,
        EventType.GenericEvent => e.GenericEvent.Data,
        EventType.EntityOperationCalled => e.EntityOperationCalled.Input,
        EventType.EntityOperationSignaled => e.EntityOperationSignaled.Input,
        EventType.EntityOperationCompleted => e.EntityOperationCompleted.Output,
        _ => null,
    };

    /// <summary>The views of a whole history, entity messages read as what they mean.</summary>
    public static List<HistoryEventView> ToViews(IReadOnlyList<HistoryEvent> history, int payloadLimit)
    {
        var entities = new EntityEventReader(payloadLimit);
        var views = new List<HistoryEventView>(history.Count);
        for (int i = 0; i < history.Count; i++) views.Add(ToView(history[i], i, payloadLimit) with { Entity = entities.Read(history[i]) });
        return views;
    }

    public static HistoryEventView ToView(HistoryEvent e, int index, int payloadLimit)
    {
        string? name = null;
        int? scheduledId = null, timerId = null;
        DateTime? fireAt = null;
        string? instanceId = null;
        TaskFailureDetails? failure = null;
        switch (e.EventTypeCase)
        {
            case EventType.ExecutionStarted:
                name = e.ExecutionStarted.Name;
                instanceId = e.ExecutionStarted.ParentInstance?.OrchestrationInstance?.InstanceId;
                break;
            case EventType.ExecutionCompleted:
                name = StatusName(e.ExecutionCompleted.OrchestrationStatus);
                failure = e.ExecutionCompleted.FailureDetails;
                break;
            case EventType.TaskScheduled:
                name = e.TaskScheduled.Name;
                break;
            case EventType.TaskCompleted:
                scheduledId = e.TaskCompleted.TaskScheduledId;
                break;
            case EventType.TaskFailed:
                scheduledId = e.TaskFailed.TaskScheduledId;
                failure = e.TaskFailed.FailureDetails;
                break;
            case EventType.SubOrchestrationInstanceCreated:
                name = e.SubOrchestrationInstanceCreated.Name;
                instanceId = e.SubOrchestrationInstanceCreated.InstanceId;
                break;
            case EventType.SubOrchestrationInstanceCompleted:
                scheduledId = e.SubOrchestrationInstanceCompleted.TaskScheduledId;
                break;
            case EventType.SubOrchestrationInstanceFailed:
                scheduledId = e.SubOrchestrationInstanceFailed.TaskScheduledId;
                failure = e.SubOrchestrationInstanceFailed.FailureDetails;
                break;
            case EventType.TimerCreated:
                fireAt = e.TimerCreated.FireAt?.ToDateTime();
                break;
            case EventType.TimerFired:
                fireAt = e.TimerFired.FireAt?.ToDateTime();
                timerId = e.TimerFired.TimerId;
                break;
            case EventType.EventSent:
                name = e.EventSent.Name;
                instanceId = e.EventSent.InstanceId;
                break;
            case EventType.EventRaised:
                name = e.EventRaised.Name;
                break;
            case EventType.EntityOperationCalled:
                name = e.EntityOperationCalled.Operation;
                instanceId = e.EntityOperationCalled.TargetInstanceId;
                break;
            case EventType.EntityOperationSignaled:
                name = e.EntityOperationSignaled.Operation;
                instanceId = e.EntityOperationSignaled.TargetInstanceId;
                break;
            case EventType.EntityUnlockSent:
                instanceId = e.EntityUnlockSent.TargetInstanceId;
                break;
            case EventType.EntityOperationFailed:
                failure = e.EntityOperationFailed.FailureDetails;
                break;
        }

        return new HistoryEventView(index, e.EventId, e.EventTypeCase.ToString(), e.Timestamp?.ToDateTime() ?? default,
            string.IsNullOrEmpty(name) ? null : name, scheduledId, timerId, fireAt,
            string.IsNullOrEmpty(instanceId) ? null : instanceId, Cut(PayloadOf(e), payloadLimit), ToFailure(failure));
    }

    /// <summary>
    /// Pairs start and end events into bars: TaskScheduled with TaskCompleted/TaskFailed by taskScheduledId,
    /// TimerCreated with TimerFired by timerId, SubOrchestrationInstanceCreated with its Completed/Failed by taskScheduledId,
    /// an entity call with its result or failure and a lock request with its grant and first unlock by request id (either
    /// encoding); an entity signal is a point. Items without an end are still running (a timer's planned end is its fireAt).
    /// </summary>
    public static Timeline ToTimeline(IReadOnlyList<HistoryEvent> history)
    {
        var items = new List<TimelineItem>();
        var open = new Dictionary<(char Kind, string Id), int>();
        var entities = new EntityEventReader(0);
        DateTime? start = null, end = null;
        for (int index = 0; index < history.Count; index++)
        {
            var e = history[index];
            var at = e.Timestamp?.ToDateTime();
            if (at is { } t)
            {
                if (start is null || t < start) start = t;
                if (end is null || t > end) end = t;
            }

            switch (e.EventTypeCase)
            {
                case EventType.TaskScheduled:
                    Open('a', e.EventId, new TimelineItem("Activity", e.TaskScheduled.Name, e.EventId, at ?? default, null, "Running", null, index));
                    break;
                case EventType.TaskCompleted:
                    Close('a', e.TaskCompleted.TaskScheduledId, "Completed");
                    break;
                case EventType.TaskFailed:
                    Close('a', e.TaskFailed.TaskScheduledId, "Failed");
                    break;
                case EventType.TimerCreated:
                    Open('t', e.EventId, new TimelineItem("Timer", "Timer", e.EventId, at ?? default, e.TimerCreated.FireAt?.ToDateTime(), "Pending", null, index));
                    break;
                case EventType.TimerFired:
                    Close('t', e.TimerFired.TimerId, "Fired");
                    break;
                case EventType.SubOrchestrationInstanceCreated:
                    Open('s', e.EventId, new TimelineItem("SubOrchestration", e.SubOrchestrationInstanceCreated.Name, e.EventId, at ?? default, null,
                        "Running", e.SubOrchestrationInstanceCreated.InstanceId, index));
                    break;
                case EventType.SubOrchestrationInstanceCompleted:
                    Close('s', e.SubOrchestrationInstanceCompleted.TaskScheduledId, "Completed");
                    break;
                case EventType.SubOrchestrationInstanceFailed:
                    Close('s', e.SubOrchestrationInstanceFailed.TaskScheduledId, "Failed");
                    break;
                default:
                    if (entities.Read(e) is { } entity) Entity(entity);
                    break;
            }

            void Open(char kind, int id, TimelineItem item) => OpenBy(kind, id.ToString(System.Globalization.CultureInfo.InvariantCulture), item);

            void OpenBy(char kind, string id, TimelineItem item)
            {
                open[(kind, id)] = items.Count;
                items.Add(item);
            }

            void Close(char kind, int id, string status) => CloseBy(kind, id.ToString(System.Globalization.CultureInfo.InvariantCulture), status);

            void CloseBy(char kind, string id, string status)
            {
                if (!open.Remove((kind, id), out var i)) return;
                items[i] = items[i] with { End = at ?? items[i].End, Status = status, EndIndex = index };
            }

            void Entity(EntityEventView v)
            {
                var id = v.RequestId ?? "";
                switch (v.Kind)
                {
                    case EntityEventKinds.Call:
                        OpenBy('c', id, new TimelineItem("EntityCall", v.Operation ?? "", e.EventId, at ?? default, null, "Running", null, index, EntityId: v.EntityId));
                        break;
                    case EntityEventKinds.Result:
                        CloseBy('c', id, "Completed");
                        break;
                    case EntityEventKinds.Failure:
                        CloseBy('c', id, "Failed");
                        break;
                    case EntityEventKinds.Signal:
                        items.Add(new TimelineItem("EntitySignal", v.Operation ?? "", e.EventId, at ?? default, at, "Sent", null, index, index, v.EntityId));
                        break;
                    case EntityEventKinds.LockRequest:
                        OpenBy('l', id, new TimelineItem("EntityLock", "lock", e.EventId, at ?? default, null, "Waiting", null, index, LockSet: v.LockSet));
                        break;
                    case EntityEventKinds.LockGranted:
                        if (open.TryGetValue(('l', id), out var granted)) items[granted] = items[granted] with { Acquired = at, Status = "Held" };
                        break;
                    case EntityEventKinds.Unlock:
                        CloseBy('l', id, "Released");
                        break;
                }
            }
        }

        return new Timeline(start, end, items);
    }
}
