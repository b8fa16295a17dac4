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
        _ => null,
    };

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
        }

        return new HistoryEventView(index, e.EventId, e.EventTypeCase.ToString(), e.Timestamp?.ToDateTime() ?? default,
            string.IsNullOrEmpty(name) ? null : name, scheduledId, timerId, fireAt,
            string.IsNullOrEmpty(instanceId) ? null : instanceId, Cut(PayloadOf(e), payloadLimit), ToFailure(failure));
    }

    /// <summary>
    /// Pairs start and end events into bars: TaskScheduled with TaskCompleted/TaskFailed by taskScheduledId,
    /// TimerCreated with TimerFired by timerId, SubOrchestrationInstanceCreated with its Completed/Failed by taskScheduledId.
    /// Items without an end are still running (a timer's planned end is its fireAt).
    /// </summary>
    public static Timeline ToTimeline(IReadOnlyList<HistoryEvent> history)
    {
        var items = new List<TimelineItem>();
        var open = new Dictionary<(char Kind, int Id), int>();
        DateTime? start = null, end = null;
        foreach (var e in history)
        {
            var at = e.Timestamp?.ToDateTime();
            if (at is { } t)
            {
                if (start is null || t < start) start = t;
                if (end is null || t > end) end = t;
            }

            switch (e.EventTypeCase)
            {
                case EventType.TaskScheduled:
                    open[('a', e.EventId)] = items.Count;
                    items.Add(new TimelineItem("Activity", e.TaskScheduled.Name, e.EventId, at ?? default, null, "Running", null));
                    break;
                case EventType.TaskCompleted:
                    Close('a', e.TaskCompleted.TaskScheduledId, at, "Completed");
                    break;
                case EventType.TaskFailed:
                    Close('a', e.TaskFailed.TaskScheduledId, at, "Failed");
                    break;
                case EventType.TimerCreated:
                    open[('t', e.EventId)] = items.Count;
                    items.Add(new TimelineItem("Timer", "Timer", e.EventId, at ?? default, e.TimerCreated.FireAt?.ToDateTime(), "Pending", null));
                    break;
                case EventType.TimerFired:
                    Close('t', e.TimerFired.TimerId, at, "Fired");
                    break;
                case EventType.SubOrchestrationInstanceCreated:
                    open[('s', e.EventId)] = items.Count;
                    items.Add(new TimelineItem("SubOrchestration", e.SubOrchestrationInstanceCreated.Name, e.EventId, at ?? default, null,
                        "Running", e.SubOrchestrationInstanceCreated.InstanceId));
                    break;
                case EventType.SubOrchestrationInstanceCompleted:
                    Close('s', e.SubOrchestrationInstanceCompleted.TaskScheduledId, at, "Completed");
                    break;
                case EventType.SubOrchestrationInstanceFailed:
                    Close('s', e.SubOrchestrationInstanceFailed.TaskScheduledId, at, "Failed");
                    break;
            }
        }

        return new Timeline(start, end, items);

        void Close(char kind, int id, DateTime? at, string status)
        {
            if (!open.Remove((kind, id), out var index)) return;
            items[index] = items[index] with { End = at ?? items[index].End, Status = status };
        }
    }
}
