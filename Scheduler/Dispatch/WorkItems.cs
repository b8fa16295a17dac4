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

    /// <summary>The version the orchestration asked for (<c>ScheduleTaskAction.version</c>); null or empty for none.</summary>
    public string? Version { get; init; }
    public TraceContext? ParentTraceContext { get; init; }

    /// <summary>The <see cref="ActivityRequest"/> a worker receives, encoded once (<see cref="OutboundWorkItem.EncodeActivityRequest"/>).</summary>
    public required byte[] Request { get; init; }
    public DateTime NotBefore { get; set; }
    public int FailedDeliveries { get; set; }

    /// <summary>Commit epoch of the episode that scheduled it; dispatched once that epoch is durable.</summary>
    public long Epoch { get; init; }

    /// <summary>When it last joined the ready queue (<see cref="TimeProvider.GetTimestamp"/>), for the dispatch span's wait.</summary>
    public long ReadySince { get; set; }
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
            OrchestrationFilter = new WorkFilter();
            foreach (var f in filters.Orchestrations) OrchestrationFilter.Add(f.Name, f.Versions);
            ActivityFilter = new WorkFilter();
            foreach (var f in filters.Activities) ActivityFilter.Add(f.Name, f.Versions);
            // Entities have no versions.
            EntityFilter = new WorkFilter();
            foreach (var f in filters.Entities) EntityFilter.Add(f.Name, []);
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

    /// <summary>null = every name and version. When filters are given, a type with an empty list receives nothing.</summary>
    public WorkFilter? OrchestrationFilter { get; }
    public WorkFilter? ActivityFilter { get; }
    public WorkFilter? EntityFilter { get; }

    /// <summary>The work items in flight on this worker (by reference: no token hashing per work item).</summary>
    public HashSet<InFlightWork> InFlight { get; } = new(ReferenceEqualityComparer.Instance);

    public Channel<OutboundWorkItem> Outbox { get; } = Channel.CreateUnbounded<OutboundWorkItem>(new UnboundedChannelOptions { SingleReader = true });

    public bool HasOrchestrationCapacity => !Closed && InFlightOrchestrations < MaxOrchestrations;
    public bool HasActivityCapacity => !Closed && InFlightActivities < MaxActivities;
    public bool HasEntityCapacity => !Closed && InFlightEntities < MaxEntities;

    /// <summary>The filter this worker gave for work of <paramref name="kind"/>; null when it takes all of it.</summary>
    public WorkFilter? FilterFor(WorkKind kind) => kind switch
    {
        WorkKind.Orchestration => OrchestrationFilter,
        WorkKind.Activity => ActivityFilter,
        _ => EntityFilter,
    };

    /// <summary>True when this worker's filters let it receive work of <paramref name="kind"/>, name and version (capacity aside).</summary>
    public bool Accepts(WorkKind kind, string name, string? version) => FilterFor(kind) is not { } filter || filter.Accepts(name, version);
}

/// <summary>
/// The names, and for each name the versions, one worker accepts for one type of work (its <c>WorkItemFilters</c>).
/// Names compare without case, as the SDKs register them. Versions compare as text without case, and a version that
/// is empty or blank is "no version" (the .NET SDK's strict match treats them so); an empty version list accepts
/// every version, as the SDKs mean it. Built once per connection; <see cref="Accepts"/> allocates nothing.
/// </summary>
public sealed class WorkFilter
{
    // null for a name accepted in every version.
    readonly Dictionary<string, HashSet<string>?> _versionsByName = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Accepts <paramref name="name"/> in <paramref name="versions"/> besides what it accepted; none = every version.</summary>
    public void Add(string name, IReadOnlyCollection<string> versions)
    {
        bool known = _versionsByName.TryGetValue(name, out var accepted);
        if (known && accepted is null) return;
        if (versions.Count == 0)
        {
            _versionsByName[name] = null;
            return;
        }

        accepted ??= new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var version in versions) accepted.Add(Normalize(version));
        _versionsByName[name] = accepted;
    }

    public bool Accepts(string name, string? version) =>
        _versionsByName.TryGetValue(name, out var versions) && (versions is null || versions.Contains(Normalize(version)));

    /// <summary>The names accepted, each with its versions (empty: every version), in name order.</summary>
    public IReadOnlyList<(string Name, IReadOnlyList<string> Versions)> Entries() => _versionsByName
        .OrderBy(e => e.Key, StringComparer.OrdinalIgnoreCase)
        .Select(e => (e.Key, (IReadOnlyList<string>)(e.Value?.Order(StringComparer.OrdinalIgnoreCase).ToArray() ?? [])))
        .ToList();

    /// <summary>The form in which a version is compared: empty for none.</summary>
    public static string Normalize(string? version) => string.IsNullOrWhiteSpace(version) ? "" : version;
}
