using DurableTask.Scheduler.Dispatch;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>An orchestrator work item handed to a worker: the episode it asks for, until the worker completes it.</summary>
public sealed class InFlightEpisode : InFlightWork
{
    public override WorkKind Kind => WorkKind.Orchestration;
    public required Instance Instance { get; init; }

    /// <summary>The time of the work item's <c>OrchestratorStarted</c> event, its first new event.</summary>
    public required DateTime StartedAt { get; init; }

    /// <summary>Number of inbox messages (from the front) included in the work item.</summary>
    public required int DispatchedCount { get; init; }

    /// <summary>
    /// The work item's <c>newEvents</c> fields as sent: its <c>OrchestratorStarted</c> event, then the
    /// <see cref="DispatchedCount"/> inbox messages. The completion appends these bytes to the history.
    /// </summary>
    public ReadOnlyMemory<byte> NewEvents { get; init; }

    /// <summary>The first inbox message dispatched, if any: the inbox still starts with the dispatched messages while it is its first.</summary>
    public HistoryEvent? FirstDispatched { get; init; }

    public required string ExecutionId { get; init; }

    /// <summary>True once the first (or only) chunk of the completion arrived; it carries <see cref="NumEventsProcessed"/>.</summary>
    public bool FirstChunkSeen { get; set; }

    public int? NumEventsProcessed { get; set; }

    /// <summary>Actions of partial (chunked) completions received so far.</summary>
    public List<OrchestratorAction>? PartialActions { get; set; }
}
