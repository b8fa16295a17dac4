using DurableTask.Dashboard.Api;

namespace DurableTask.Dashboard.Components;

/// <summary>A member of a grouped step that did not complete: where its end is in the history, and why.</summary>
public sealed record FlowFailure(int HistoryIndex, string Message, string? InstanceId);

/// <summary>
/// One box of the flow: a step, or several steps of the same kind and name started together (a fan-out) or one after
/// another (a loop). <c>Attempts</c> counts the tries of a retried step.
/// </summary>
public sealed record FlowStep(string Kind, string Name, string? Target, IReadOnlyList<string>? LockSet, int Count, int Completed, int Failed,
    int Open, int Attempts, bool Sequential, DateTime Start, DateTime? End, DateTime? Acquired, string Status, int HistoryIndex,
    IReadOnlyList<FlowFailure> Failures, IReadOnlyList<string> Instances, string? Result);

/// <summary>What the orchestration did in one episode (the steps it started together), in history order.</summary>
public sealed record FlowStage(IReadOnlyList<FlowStep> Steps);

/// <summary>
/// How the current execution relates to earlier ones of its instance. <c>Pending</c> false: it was continued from an
/// earlier execution, and started at <c>At</c> (its start event, at <c>HistoryIndex</c>, with <c>Input</c>).
/// <c>Pending</c> true: an execution continued as new and the new one has not started yet.
/// </summary>
public sealed record FlowContinuation(bool Pending, DateTime? At, int HistoryIndex, string? Input);

/// <summary>
/// Builds the flow of one orchestration from its timeline (paired steps) and history (events received and sent,
/// continue-as-new): one stage per episode that started something, parallel steps of one kind and name grouped, a
/// retried step shown once with its attempts, and a run of stages that repeat the same step folded into one.
/// </summary>
public static class FlowModel
{
    // Timers the SDK creates between the attempts of a retried step.
    const string Timer = "Timer";

    /// <summary>How a step's kind is written in the flow and the timeline.</summary>
    public static string KindLabel(string kind) => kind switch
    {
        "Activity" => "activity",
        "SubOrchestration" => "sub-orchestration",
        "Timer" => "timer",
        "EntityCall" => "entity call",
        "EntitySignal" => "signal",
        "EntityLock" => "critical section",
        "EventReceived" => "event received",
        "EventSent" => "event sent",
        "ContinueAsNew" => "continue as new",
        _ => kind.ToLowerInvariant(),
    };

    sealed record Raw(TimelineItem Item, int Episode, string? Failure, string? Result);

    /// <summary>
    /// Whether the execution shown continued from an earlier one, or has continued as new and the new one waits to start.
    /// The scheduler keeps only the current execution's history: a continue-as-new replaces it with a new
    /// <c>ExecutionStarted</c> stamped with the time it continued, while the instance keeps its creation time. A first
    /// execution's start event is stamped with that creation time (a scheduled start too: it is created with the
    /// instance), so a start event later than the creation marks a continued execution. Until the new execution's first
    /// episode completes its history has no start event, yet the instance is Running (a new instance is Pending then).
    /// Null when neither applies or the history is not known.
    /// </summary>
    public static FlowContinuation? Continuation(OrchestrationDetail detail, IReadOnlyList<HistoryEventView>? history)
    {
        if (history is null) return null;
        foreach (var e in history)
        {
            if (e.Type == "ExecutionStarted") return e.Timestamp > detail.CreatedAt ? new FlowContinuation(false, e.Timestamp, e.Index, e.Payload?.Value) : null;
        }

        return detail.Status == "Running" ? new FlowContinuation(true, null, -1, null) : null;
    }

    public static IReadOnlyList<FlowStage> Build(Timeline? timeline, IReadOnlyList<HistoryEventView>? history)
    {
        if (history is null || history.Count == 0) return [];
        var episodes = new int[history.Count];
        for (int i = 0, episode = 0; i < history.Count; i++)
        {
            if (history[i].Type == "OrchestratorStarted") episode++;
            episodes[i] = episode;
        }

        var raws = new List<Raw>();
        foreach (var item in timeline?.Items ?? [])
        {
            if (item.StartIndex < 0 || item.StartIndex >= history.Count) continue;
            var end = item.EndIndex is { } e && e >= 0 && e < history.Count ? history[e] : null;
            var failure = end?.Failure ?? end?.Entity?.Failure;
            raws.Add(new Raw(item, episodes[item.StartIndex], failure?.ErrorMessage, end?.Entity?.Output?.Value));
        }

        foreach (var e in history)
        {
            var kind = e.Type switch
            {
                "EventRaised" when e.Entity is null => "EventReceived",
                "EventSent" when e.Entity is null => "EventSent",
                "ContinueAsNew" => "ContinueAsNew",
                "ExecutionTerminated" => "Terminated",
                "ExecutionSuspended" => "Suspended",
                "ExecutionResumed" => "Resumed",
                _ => null,
            };
            if (kind is null) continue;
            var item = new TimelineItem(kind, e.Name ?? "", e.EventId, e.Timestamp, e.Timestamp, kind == "EventSent" ? "Sent" : "Done",
                kind == "EventSent" ? e.InstanceId : null, e.Index, e.Index);
            raws.Add(new Raw(item, episodes[e.Index], null, kind == "EventReceived" ? e.Payload?.Value : null));
        }

        raws.Sort((a, b) => a.Item.StartIndex.CompareTo(b.Item.StartIndex));
        var stages = new List<List<Raw>>();
        foreach (var raw in raws)
        {
            if (stages.Count > 0 && stages[^1][0].Episode == raw.Episode) stages[^1].Add(raw);
            else stages.Add([raw]);
        }

        return Fold(FoldRetries(stages)).Select(s => new FlowStage(s)).ToList();
    }

    /// <summary>A step that failed, then a retry timer, then the same step again: one step with its attempts.</summary>
    static List<List<FlowStep>> FoldRetries(List<List<Raw>> stages)
    {
        var result = new List<List<FlowStep>>();
        foreach (var stage in stages)
        {
            var steps = Group(stage);
            if (steps is [{ Count: 1, Kind: "Activity" or "SubOrchestration" } retry] && PreviousAttempt(result, retry) is { } at)
            {
                var (stageIndex, failed) = at;
                result.RemoveRange(stageIndex + 1, result.Count - stageIndex - 1);
                result[stageIndex] = [failed with
                {
                    Attempts = failed.Attempts + 1, End = retry.End, Status = retry.Status, Completed = retry.Completed, Failed = retry.Failed, Open = retry.Open,
                    Failures = [.. failed.Failures, .. retry.Failures], Instances = [.. failed.Instances, .. retry.Instances], Result = retry.Result,
                }];
                continue;
            }

            result.Add(steps);
        }

        return result;
    }

    static (int Stage, FlowStep Step)? PreviousAttempt(List<List<FlowStep>> stages, FlowStep retry)
    {
        for (int i = stages.Count - 1; i >= 0; i--)
        {
            if (stages[i] is [{ Kind: Timer, Count: 1 }]) continue;
            if (stages[i] is [{ Count: 1, Status: "Failed" } step] && step.Kind == retry.Kind && step.Name == retry.Name && i < stages.Count - 1) return (i, step);
            return null;
        }

        return null;
    }

    /// <summary>Consecutive stages of one single step with the same kind and name (a loop): one step counted in sequence.</summary>
    static List<List<FlowStep>> Fold(List<List<FlowStep>> stages)
    {
        var result = new List<List<FlowStep>>();
        foreach (var stage in stages)
        {
            if (stage is [{ Attempts: 1 } step] && step.Kind != Timer && result.Count > 0 && result[^1] is [{ Attempts: 1 } last]
                && last.Kind == step.Kind && last.Name == step.Name && Key(last.Kind, last.Target) == Key(step.Kind, step.Target))
            {
                result[^1] = [Merge(last, step) with { Sequential = true }];
                continue;
            }

            result.Add(stage);
        }

        return result;
    }

    static List<FlowStep> Group(List<Raw> stage)
    {
        var groups = new List<FlowStep>();
        var byKey = new Dictionary<(string, string, string?), int>();
        foreach (var raw in stage)
        {
            var step = One(raw);
            var key = (step.Kind, step.Name, Key(step.Kind, step.Target));
            if (byKey.TryGetValue(key, out var at)) groups[at] = Merge(groups[at], step);
            else
            {
                byKey[key] = groups.Count;
                groups.Add(step);
            }
        }

        return groups;
    }

    /// <summary>What must match for steps to be grouped besides kind and name: an entity's name (its key may differ), or the whole target.</summary>
    static string? Key(string kind, string? target) => kind switch
    {
        "SubOrchestration" => null,
        "EntityCall" or "EntitySignal" when target is { Length: > 1 } => target[..Math.Max(1, target.IndexOf('@', 1))],
        _ => target,
    };

    static FlowStep One(Raw raw)
    {
        var i = raw.Item;
        bool failed = i.Status == "Failed";
        bool open = i.End is null || i.Status is "Running" or "Waiting" or "Held" || (i.Kind == Timer && i.Status == "Pending");
        var target = i.Kind is "EntityCall" or "EntitySignal" ? i.EntityId : i.Kind == "SubOrchestration" ? null : i.InstanceId;
        return new FlowStep(i.Kind, i.Name, target, i.LockSet, 1, failed || open ? 0 : 1, failed ? 1 : 0, open && !failed ? 1 : 0, 1, false,
            i.Start, i.End, i.Acquired, i.Status, i.StartIndex,
            failed ? [new FlowFailure(i.EndIndex ?? i.StartIndex, raw.Failure ?? "failed", i.InstanceId)] : [],
            i.Kind == "SubOrchestration" && i.InstanceId is { } child ? [child] : [], raw.Result);
    }

    static FlowStep Merge(FlowStep a, FlowStep b) => a with
    {
        Target = a.Target == b.Target ? a.Target : null,
        Count = a.Count + b.Count,
        Completed = a.Completed + b.Completed,
        Failed = a.Failed + b.Failed,
        Open = a.Open + b.Open,
        Start = a.Start < b.Start ? a.Start : b.Start,
        End = a.End is null || b.End is null ? null : a.End > b.End ? a.End : b.End,
        Status = a.Open + b.Open > 0 ? "Running" : a.Failed + b.Failed > 0 ? "Failed" : a.Status,
        Failures = [.. a.Failures, .. b.Failures],
        Instances = [.. a.Instances, .. b.Instances],
        Result = null,
    };
}
