using System.Text.Json;

namespace DurableTask.Dashboard.Api;

// The scheduler API's JSON shapes (version 1), as the dashboard reads them.

public sealed record ApiInfo(string ApiVersion, bool AuthenticationEnabled, IReadOnlyList<string> TaskHubs);

public sealed record TaskHubSummary(string Name, int InstanceCount, int WorkerCount);

public sealed record StatusCounts(Dictionary<string, int> Counts, int Total);

public sealed record ThroughputMinute(DateTime Minute, long Started, long Completed);

public sealed record Backlog(int Orchestrations, int Activities, int Entities);

/// <summary>A waiting name and version; none of the connected workers accepts it when <c>AcceptingWorkers</c> is 0.</summary>
public sealed record BacklogGroup(string Type, string Name, string? Version, int Count, int AcceptingWorkers);

public sealed record BacklogDetail(int Orchestrations, int Activities, int Entities, IReadOnlyList<BacklogGroup>? Groups);

/// <summary>A name a worker takes, in <c>Versions</c> (empty: every version; "": no version).</summary>
public sealed record NameFilter(string Name, IReadOnlyList<string> Versions);

public sealed record WorkerFilters(IReadOnlyList<NameFilter> Orchestrations, IReadOnlyList<NameFilter> Activities, IReadOnlyList<NameFilter> Entities);

/// <summary>A connected worker; <c>Filters</c> is null when it takes every name and version.</summary>
public sealed record Worker(string WorkerId, string TaskHub, DateTime ConnectedAt, int OrchestrationsInFlight, int ActivitiesInFlight, int EntitiesInFlight,
    WorkerFilters? Filters = null);

public sealed record HubOverview(string TaskHub, int InstanceCount, StatusCounts Counts, IReadOnlyList<ThroughputMinute> Throughput,
    Backlog Backlog, IReadOnlyList<Worker> Workers);

public sealed record Payload(string Value, int Length, bool Truncated);

public sealed record Failure(string ErrorType, string ErrorMessage, string? StackTrace, bool IsNonRetriable, Failure? InnerFailure);

public sealed record OrchestrationSummary(
    string InstanceId, string Name, string? Version, string Status, DateTime CreatedAt, DateTime LastUpdatedAt, DateTime? CompletedAt,
    DateTime? ScheduledStartAt, double DurationMs, string? ParentInstanceId, string ExecutionId, Dictionary<string, string>? Tags, Failure? Failure);

public sealed record OrchestrationPage(IReadOnlyList<OrchestrationSummary> Items, string? Next, string? Previous);

public sealed record OrchestrationDetail(
    string InstanceId, string Name, string? Version, string Status, DateTime CreatedAt, DateTime LastUpdatedAt, DateTime? CompletedAt,
    DateTime? ScheduledStartAt, double DurationMs, string? ParentInstanceId, string ExecutionId, Dictionary<string, string>? Tags,
    Failure? Failure, Payload? Input, Payload? Output, Payload? CustomStatus);

public sealed record HistoryEventView(int Index, int EventId, string Type, DateTime Timestamp, string? Name, int? TaskScheduledId, int? TimerId,
    DateTime? FireAt, string? InstanceId, Payload? Payload, Failure? Failure, EntityEventView? Entity = null);

/// <summary>
/// An entity message of the history as what it means (either encoding): Call, Signal, LockRequest, Unlock sent;
/// Result, Failure, LockGranted received. <c>RequestId</c> pairs an answer with its request.
/// </summary>
public sealed record EntityEventView(string Kind, string? RequestId, string? EntityId = null, string? Operation = null,
    IReadOnlyList<string>? LockSet = null, Payload? Input = null, Payload? Output = null, DateTime? ScheduledTime = null, Failure? Failure = null);

/// <summary>A bar of the timeline; <c>StartIndex</c> and <c>EndIndex</c> are its events' positions in the history.</summary>
public sealed record TimelineItem(string Kind, string Name, int ScheduledId, DateTime Start, DateTime? End, string Status, string? InstanceId,
    int StartIndex = 0, int? EndIndex = null, string? EntityId = null, IReadOnlyList<string>? LockSet = null, DateTime? Acquired = null);

public sealed record Timeline(DateTime? Start, DateTime? End, IReadOnlyList<TimelineItem> Items);

public sealed record EntitySummary(string EntityId, string Name, string Key, DateTime LastModifiedAt, int BacklogQueueSize, string? LockedBy, Payload? State);

public sealed record EntityPage(IReadOnlyList<EntitySummary> Items, string? Next);

public sealed record StartResponse(string InstanceId);

public sealed record PurgeResponse(int Deleted, bool Complete);

public sealed record BulkFailure(string InstanceId, string Error);

public sealed record BulkResult(int Matched, int Succeeded, int Skipped, bool Complete, IReadOnlyList<BulkFailure> Failures, IReadOnlyList<string>? NewInstanceIds);

public sealed record StartOrchestration(string Name, string? InstanceId, JsonElement? Input, DateTime? ScheduledStartTime,
    Dictionary<string, string>? Tags, string? Version = null);

/// <summary>The filters of the orchestration list; the same names as the API's query parameters and the page's URL.</summary>
public sealed record OrchestrationFilter
{
    public IReadOnlyList<string> Statuses { get; init; } = [];
    public string? Name { get; init; }
    public string? Version { get; init; }
    public string? Prefix { get; init; }
    public string? Search { get; init; }
    public DateTime? CreatedFrom { get; init; }
    public DateTime? CreatedTo { get; init; }
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();
    public bool HideSubOrchestrations { get; init; }

    public bool IsEmpty => Statuses.Count == 0 && string.IsNullOrEmpty(Name) && string.IsNullOrEmpty(Version) && string.IsNullOrEmpty(Prefix) && string.IsNullOrEmpty(Search)
        && CreatedFrom is null && CreatedTo is null && Tags.Count == 0 && !HideSubOrchestrations;

    /// <summary>Query parameters (without paging), in a stable order.</summary>
    public IEnumerable<KeyValuePair<string, string>> ToQuery()
    {
        foreach (var s in Statuses) yield return new("status", s);
        if (!string.IsNullOrEmpty(Name)) yield return new("name", Name);
        if (!string.IsNullOrEmpty(Version)) yield return new("version", Version);
        if (!string.IsNullOrEmpty(Prefix)) yield return new("prefix", Prefix);
        if (!string.IsNullOrEmpty(Search)) yield return new("search", Search);
        if (CreatedFrom is { } from) yield return new("createdFrom", from.ToString("yyyy-MM-ddTHH:mm:ssZ"));
        if (CreatedTo is { } to) yield return new("createdTo", to.ToString("yyyy-MM-ddTHH:mm:ssZ"));
        foreach (var (k, v) in Tags) yield return new("tag", v.Length == 0 ? k : $"{k}={v}");
        if (HideSubOrchestrations) yield return new("hideSubOrchestrations", "true");
    }

    /// <summary>The body filter of a bulk action.</summary>
    public object ToBody() => new
    {
        statuses = Statuses.Count > 0 ? Statuses : null,
        name = Name,
        version = Version,
        prefix = Prefix,
        search = Search,
        createdFrom = CreatedFrom,
        createdTo = CreatedTo,
        tags = Tags.Count > 0 ? Tags : null,
        hideSubOrchestrations = HideSubOrchestrations,
    };
}

/// <summary><c>GET /api/v1/me</c>: who the scheduler takes the caller for, and its permissions per task hub.</summary>
public sealed record CallerIdentity(string Principal, string Name, bool AuthenticationEnabled, IReadOnlyList<string>? Roles,
    IReadOnlyList<TaskHubPermissions>? TaskHubs);

public sealed record TaskHubPermissions(string Name, IReadOnlyList<string> Permissions);
