using System.Threading.Channels;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Dispatch;

public enum WorkKind { Orchestration, Activity, Entity }

/// <summary>A work item handed to a worker and not yet completed. The completion token names it.</summary>
public abstract class InFlightWork
{
    public required string Token { get; init; }
    public required WorkerConnection Worker { get; init; }
    public abstract WorkKind Kind { get; }
}

/// <summary>An activity invocation waiting for, or held by, a worker.</summary>
public sealed class ActivityTask
{
    public required string InstanceId { get; init; }
    public required string ExecutionId { get; init; }
    public required int TaskId { get; init; }
    public required string Name { get; init; }
    public TraceContext? ParentTraceContext { get; init; }

    /// <summary>The <see cref="ActivityRequest"/> a worker receives, encoded once (<see cref="OutboundWorkItem.EncodeActivityRequest"/>).</summary>
    public required byte[] Request { get; init; }
    public DateTime NotBefore { get; set; }
    public int FailedDeliveries { get; set; }

    /// <summary>Commit epoch of the episode that scheduled it; dispatched once that epoch is durable.</summary>
    public long Epoch { get; init; }
}

public sealed class InFlightActivity : InFlightWork
{
    public override WorkKind Kind => WorkKind.Activity;
    public required ActivityTask Task { get; init; }
}

/// <summary>One connected <c>GetWorkItems</c> stream and what it may receive.</summary>
public sealed class WorkerConnection
{
    /// <param name="orchestrationCap">Most orchestrator work items held at once whatever the worker allows; 0 for no cap.</param>
    public WorkerConnection(string id, string hub, GetWorkItemsRequest request, int defaultConcurrency, int orchestrationCap = 0)
    {
        Id = id;
        Hub = hub;
        ConnectedAt = DateTime.UtcNow;
        MaxOrchestrations = request.MaxConcurrentOrchestrationWorkItems > 0 ? request.MaxConcurrentOrchestrationWorkItems : defaultConcurrency;
        if (orchestrationCap > 0) MaxOrchestrations = Math.Min(MaxOrchestrations, orchestrationCap);
        MaxActivities = request.MaxConcurrentActivityWorkItems > 0 ? request.MaxConcurrentActivityWorkItems : defaultConcurrency;
        MaxEntities = request.MaxConcurrentEntityWorkItems > 0 ? request.MaxConcurrentEntityWorkItems : defaultConcurrency;
        SupportsHistoryStreaming = request.Capabilities.Contains(WorkerCapability.HistoryStreaming);

        var filters = request.WorkItemFilters;
        if (filters is not null && (filters.Orchestrations.Count > 0 || filters.Activities.Count > 0 || filters.Entities.Count > 0))
        {
            OrchestrationFilter = filters.Orchestrations.Select(f => f.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            ActivityFilter = filters.Activities.Select(f => f.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            EntityFilter = filters.Entities.Select(f => f.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        }
    }

    public string Id { get; }
    public string Hub { get; }
    public DateTime ConnectedAt { get; }
    public int MaxOrchestrations { get; }
    public int MaxActivities { get; }
    public int MaxEntities { get; }
    public int InFlightOrchestrations { get; set; }
    public int InFlightActivities { get; set; }
    public int InFlightEntities { get; set; }
    public bool SupportsHistoryStreaming { get; }
    public bool Closed { get; set; }

    /// <summary>null = every name. When filters are given, a type with an empty list receives nothing.</summary>
    public HashSet<string>? OrchestrationFilter { get; }
    public HashSet<string>? ActivityFilter { get; }
    public HashSet<string>? EntityFilter { get; }

    /// <summary>The work items in flight on this worker (by reference: no token hashing per work item).</summary>
    public HashSet<InFlightWork> InFlight { get; } = new(ReferenceEqualityComparer.Instance);

    public Channel<OutboundWorkItem> Outbox { get; } = Channel.CreateUnbounded<OutboundWorkItem>(new UnboundedChannelOptions { SingleReader = true });

    public bool HasOrchestrationCapacity => !Closed && InFlightOrchestrations < MaxOrchestrations;
    public bool HasActivityCapacity => !Closed && InFlightActivities < MaxActivities;
    public bool HasEntityCapacity => !Closed && InFlightEntities < MaxEntities;

    public bool Accepts(HashSet<string>? filter, string name) => filter is null || filter.Contains(name);
}
