using System.Text.Json;
using System.Text.Json.Serialization;

namespace DurableTask.Scheduler.Api;

// The JSON shapes of the HTTP API (version 1). Property names are camelCase, statuses are their names
// ("Running", "Completed", ...), times are ISO 8601 UTC. Payloads (inputs, outputs, event data) are the serialized
// text the SDKs store, usually JSON; responses carry them as strings.

public sealed record ApiInfo(string ApiVersion, bool AuthenticationEnabled, IReadOnlyList<string> TaskHubs);

/// <summary>A task hub: its instances (in memory and, past <c>MaxFinishedInstancesInMemory</c>, only in the store) and connected workers.</summary>
public sealed record TaskHubSummary(string Name, int InstanceCount, int WorkerCount, int InstancesInMemory);

public sealed record StatusCounts(IReadOnlyDictionary<string, int> Counts, int Total);

public sealed record ThroughputMinute(DateTime Minute, long Started, long Completed);

public sealed record Backlog(int Orchestrations, int Activities, int Entities);

/// <summary>
/// <c>GET /taskhubs/{hub}/backlog</c>: the waiting work by type, and grouped by type (<c>orchestration</c>,
/// <c>activity</c>, <c>entity</c>), name and version. A group with <c>acceptingWorkers</c> 0 waits for a worker
/// whose filters accept that name and version; such groups come first.
/// </summary>
public sealed record BacklogDetail(int Orchestrations, int Activities, int Entities, IReadOnlyList<BacklogGroupView> Groups);

/// <summary>One name and version of waiting work. <c>version</c> is absent for none (and for entities, which have no versions).</summary>
public sealed record BacklogGroupView(string Type, string Name, string? Version, int Count, int AcceptingWorkers);

/// <summary>
/// Work of one task hub for autoscaling: waiting work items by type, their sum (<c>pending</c>), work items handed to
/// workers and not yet completed (<c>inFlight</c>), and <c>total</c> = pending + inFlight.
/// </summary>
public sealed record HubScale(string TaskHub, int Orchestrations, int Activities, int Entities, int Pending, int InFlight, int Total);

public sealed record ScaleSummary(int Pending, int InFlight, int Total, IReadOnlyList<HubScale> TaskHubs);

/// <summary>A connected worker. <c>filters</c> is absent when it takes every name and version.</summary>
public sealed record Worker(
    string WorkerId, string TaskHub, DateTime ConnectedAt,
    int OrchestrationsInFlight, int ActivitiesInFlight, int EntitiesInFlight, WorkerFilterView? Filters = null);

/// <summary>The work-item filters a worker gave: the names of each type it takes, nothing of a type whose list is empty.</summary>
public sealed record WorkerFilterView(IReadOnlyList<NameFilter> Orchestrations, IReadOnlyList<NameFilter> Activities, IReadOnlyList<NameFilter> Entities);

/// <summary>A name a worker takes, in <c>versions</c> (empty: every version; <c>""</c>: no version).</summary>
public sealed record NameFilter(string Name, IReadOnlyList<string> Versions);

public sealed record HubOverview(
    string TaskHub, int InstanceCount, StatusCounts Counts, IReadOnlyList<ThroughputMinute> Throughput,
    Backlog Backlog, IReadOnlyList<Worker> Workers);

/// <summary>A payload, cut to the requested length. <c>Length</c> is the full length in characters.</summary>
public sealed record Payload(string Value, int Length, bool Truncated);

public sealed record Failure(
    string ErrorType, string ErrorMessage, string? StackTrace, bool IsNonRetriable, Failure? InnerFailure);

public sealed record OrchestrationSummary(
    string InstanceId,
    string Name,
    string? Version,
    string Status,
    DateTime CreatedAt,
    DateTime LastUpdatedAt,
    DateTime? CompletedAt,
    DateTime? ScheduledStartAt,
    double DurationMs,
    string? ParentInstanceId,
    string ExecutionId,
    IReadOnlyDictionary<string, string>? Tags,
    Failure? Failure);

public sealed record OrchestrationPage(IReadOnlyList<OrchestrationSummary> Items, string? Next, string? Previous);

public sealed record OrchestrationDetail(
    string InstanceId,
    string Name,
    string? Version,
    string Status,
    DateTime CreatedAt,
    DateTime LastUpdatedAt,
    DateTime? CompletedAt,
    DateTime? ScheduledStartAt,
    double DurationMs,
    string? ParentInstanceId,
    string ExecutionId,
    IReadOnlyDictionary<string, string>? Tags,
    Failure? Failure,
    Payload? Input,
    Payload? Output,
    Payload? CustomStatus);

public sealed record HistoryEventView(
    int Index,
    int EventId,
    string Type,
    DateTime Timestamp,
    string? Name,
    int? TaskScheduledId,
    int? TimerId,
    DateTime? FireAt,
    string? InstanceId,
    Payload? Payload,
    Failure? Failure,
    EntityEventView? Entity = null);

/// <summary>
/// What an entity message in an orchestration's history means, in either encoding: a <c>Call</c>, <c>Signal</c>,
/// <c>LockRequest</c> or <c>Unlock</c> the orchestration sent, or the <c>Result</c>, <c>Failure</c> or <c>LockGranted</c>
/// it received. <c>RequestId</c> pairs an answer with its request (for locks, the critical section's id).
/// </summary>
public sealed record EntityEventView(
    string Kind,
    string? RequestId,
    string? EntityId = null,
    string? Operation = null,
    IReadOnlyList<string>? LockSet = null,
    Payload? Input = null,
    Payload? Output = null,
    DateTime? ScheduledTime = null,
    Failure? Failure = null);

/// <summary>
/// One bar of the timeline, from its start event to its end event: an activity, timer, sub-orchestration, entity call
/// (<c>EntityCall</c>, to its result), entity signal (<c>EntitySignal</c>, a point) or critical section (<c>EntityLock</c>,
/// from the lock request to the first unlock; <c>Acquired</c> is when the locks were granted). <c>StartIndex</c> and
/// <c>EndIndex</c> are the positions of those events in the history.
/// </summary>
public sealed record TimelineItem(
    string Kind,
    string Name,
    int ScheduledId,
    DateTime Start,
    DateTime? End,
    string Status,
    string? InstanceId,
    int StartIndex = 0,
    int? EndIndex = null,
    string? EntityId = null,
    IReadOnlyList<string>? LockSet = null,
    DateTime? Acquired = null);

public sealed record Timeline(DateTime? Start, DateTime? End, IReadOnlyList<TimelineItem> Items);

public sealed record EntitySummary(
    string EntityId, string Name, string Key, DateTime LastModifiedAt, int BacklogQueueSize, string? LockedBy, Payload? State);

public sealed record EntityPage(IReadOnlyList<EntitySummary> Items, string? Next);

// Requests.

public sealed class StartRequest
{
    public string? Name { get; set; }
    public string? InstanceId { get; set; }
    public string? Version { get; set; }
    public JsonElement? Input { get; set; }
    public DateTime? ScheduledStartTime { get; set; }
    public Dictionary<string, string>? Tags { get; set; }
}

public sealed record StartResponse(string InstanceId);

public sealed class ReasonRequest
{
    public string? Reason { get; set; }
}

public sealed class TerminateRequest
{
    public string? Reason { get; set; }
    public bool Recursive { get; set; } = true;
}

public sealed class RestartRequest
{
    public bool NewInstanceId { get; set; }
}

public sealed class RaiseEventRequest
{
    public string? Name { get; set; }
    public JsonElement? Input { get; set; }
}

public sealed record PurgeResponse(int Deleted, bool Complete);

/// <summary>The filter of a bulk action, with the same meaning as the list's query parameters.</summary>
public sealed class FilterBody
{
    public List<string>? Statuses { get; set; }
    public string? Name { get; set; }
    public string? Version { get; set; }
    public string? Prefix { get; set; }
    public string? Search { get; set; }
    public DateTime? CreatedFrom { get; set; }
    public DateTime? CreatedTo { get; set; }
    public Dictionary<string, string>? Tags { get; set; }
    public bool HideSubOrchestrations { get; set; }
}

/// <summary>A bulk action over explicit instance ids or over every instance matching a filter.</summary>
public sealed class BulkRequest
{
    public List<string>? InstanceIds { get; set; }
    public FilterBody? Filter { get; set; }
    public string? Reason { get; set; }
    public bool Recursive { get; set; } = true;
    public bool NewInstanceId { get; set; }

    /// <summary>The event a bulk raise-event sends, and its payload (any JSON value).</summary>
    public string? EventName { get; set; }
    public JsonElement? EventInput { get; set; }

    /// <summary>Most instances one request acts on (all but purge); at most 10,000.</summary>
    public int? Limit { get; set; }
}

public sealed record BulkFailure(string InstanceId, string Error);

public sealed record BulkResult(int Matched, int Succeeded, int Skipped, bool Complete, IReadOnlyList<BulkFailure> Failures,
    IReadOnlyList<string>? NewInstanceIds = null);

public sealed class EntitySignalRequest
{
    public string? Operation { get; set; }
    public JsonElement? Input { get; set; }
    public DateTime? ScheduledTime { get; set; }
}

public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = Create();

    static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary><c>GET /api/v1/scaleout</c>: this replica, the hubs it owns, and the owner of each hub it knows of.</summary>
public sealed record ScaleOutView(bool Enabled, string ReplicaId, bool Healthy, int LiveReplicas, int FairShare,
    List<string> OwnedHubs, SortedDictionary<string, string> Owners);
