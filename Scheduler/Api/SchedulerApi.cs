using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Api;

/// <summary>
/// The versioned JSON API (<c>/api/v1</c>) the dashboard and people use to inspect and manage task hubs.
/// Handlers are cheap: pages hold at most 1000 items, counts are computed once per request, bulk actions are bounded.
/// </summary>
public static class SchedulerApi
{
    public const string Prefix = HttpSecurityMiddleware.ApiV1Prefix;
    const int MaxBulkLimit = 10_000;
    const int DefaultBulkLimit = 1000;
    const int MaxPurgeIds = 1000;
    static readonly TimeSpan BulkPurgeTimeout = TimeSpan.FromSeconds(10);

    // Position of {id} among the path segments of /api/v1/taskhubs/{hub}/orchestrations/{id}.
    const int IdSegment = 5;

    static readonly OrchestrationStatus[] ShownStatuses =
    [
        OrchestrationStatus.Pending, OrchestrationStatus.Running, OrchestrationStatus.Suspended, OrchestrationStatus.Completed,
        OrchestrationStatus.Failed, OrchestrationStatus.Terminated, OrchestrationStatus.ContinuedAsNew, OrchestrationStatus.Canceled,
    ];

    public static WebApplication MapSchedulerApi(this WebApplication app)
    {
        const string Hub = "hub";
        var api = app.MapGroup(Prefix).AddEndpointFilter(HandleErrors);
        // Lists show only the task hubs the caller may read.
        // With replicas, lists also name the hubs other replicas own (their numbers come from those replicas).
        api.MapGet("/", (HttpContext http, AccessControl access, TaskHubRegistry hubs, ScaleOut.HubOwnership ownership) =>
                Json(new ApiInfo("v1", access.AuthenticationEnabled, ReadableNames(hubs, ownership, access, http))))
            .RequirePermission(Permission.Read);
        api.MapGet("/taskhubs", async (HttpContext http, AccessControl access, TaskHubRegistry hubs, ScaleOut.ReplicaForwarder replicas) =>
            {
                var local = Readable(hubs, access, http)
                    .Select(h => new TaskHubSummary(h.Name, h.InstanceCount, h.GetWorkers().Count, h.InstancesInMemory)).ToList();
                var remote = (await replicas.GatherAsync<List<TaskHubSummary>>(http, Prefix + "/taskhubs", ApiJson.Options)).SelectMany(l => l);
                return Json(Merge(local, remote, s => s.Name));
            })
            .RequirePermission(Permission.Read);

        // Replicas on one Redis: which replica this is and which task hubs each one owns, as this replica knows it.
        // Only hubs the caller may read are named.
        api.MapGet("/scaleout", (HttpContext http, AccessControl access, ScaleOut.HubOwnership o) =>
            {
                bool Readable(string hub) => access.IsAllowed(http.User, Permission.Read, hub);
                return Json(new ScaleOutView(
                    o.Enabled, o.ReplicaId, o.Healthy, o.LiveReplicas, o.FairShare, o.OwnedHubs.Where(Readable).ToList(),
                    new SortedDictionary<string, string>(o.Owners.Where(e => Readable(e.Key)).ToDictionary(), StringComparer.OrdinalIgnoreCase)));
            })
            .RequirePermission(Permission.Read);

        var hub = api.MapGroup("/taskhubs/{hub}").RequirePermission(Permission.Read, Hub);
        hub.MapGet("/", Overview);
        hub.MapGet("/counts", async (string hub, HttpRequest request, TaskHubRegistry hubs) =>
            Json(await Counts(Find(hubs, hub), ApiRequests.Filter(request), CountCache.Key(request))));
        hub.MapGet("/throughput", (string hub, HttpRequest request, TaskHubRegistry hubs) =>
            Json(Throughput(Find(hubs, hub), ApiRequests.Int(request, "minutes", 15, 1, 60))));
        hub.MapGet("/backlog", (string hub, TaskHubRegistry hubs) => Json(BacklogDetailOf(Find(hubs, hub))));
        // The autoscaling signal: flat numbers that KEDA's metrics-api scaler reads with valueLocation (e.g. "total").
        hub.MapGet("/scale", (string hub, TaskHubRegistry hubs) => Json(ScaleOf(Find(hubs, hub))));
        api.MapGet("/scale", async (HttpContext http, AccessControl access, TaskHubRegistry hubs, ScaleOut.ReplicaForwarder replicas) =>
        {
            var local = Readable(hubs, access, http).Select(ScaleOf).ToList();
            var remote = (await replicas.GatherAsync<ScaleSummary>(http, Prefix + "/scale", ApiJson.Options)).SelectMany(s => s.TaskHubs);
            var perHub = Merge(local, remote, h => h.TaskHub);
            return Json(new ScaleSummary(perHub.Sum(h => h.Pending), perHub.Sum(h => h.InFlight), perHub.Sum(h => h.Total), perHub));
        }).RequirePermission(Permission.Read);
        hub.MapGet("/workers", (string hub, TaskHubRegistry hubs) => Json(Workers(Find(hubs, hub))));

        hub.MapGet("/orchestrations", List);
        hub.MapPost("/orchestrations", Start).RequirePermission(Permission.ClientWrite, Hub);
        var instance = hub.MapGroup("/orchestrations/{id}");
        instance.MapGet("/", Get);
        instance.MapDelete("/", Purge).RequirePermission(Permission.Admin, Hub);
        instance.MapGet("/history", History);
        instance.MapGet("/history/{index:int}/payload", EventPayload);
        instance.MapGet("/timeline", TimelineOf);
        instance.MapGet("/payloads/{kind}", DownloadPayload);
        instance.MapPost("/suspend", Suspend).RequirePermission(Permission.ClientWrite, Hub);
        instance.MapPost("/resume", Resume).RequirePermission(Permission.ClientWrite, Hub);
        instance.MapPost("/terminate", Terminate).RequirePermission(Permission.ClientWrite, Hub);
        instance.MapPost("/restart", Restart).RequirePermission(Permission.ClientWrite, Hub);
        instance.MapPost("/rewind", Rewind).RequirePermission(Permission.ClientWrite, Hub);
        instance.MapPost("/events", RaiseEvent).RequirePermission(Permission.ClientWrite, Hub);

        hub.MapPost("/bulk/terminate", BulkTerminate).RequirePermission(Permission.ClientWrite, Hub);
        hub.MapPost("/bulk/purge", BulkPurge).RequirePermission(Permission.Admin, Hub);
        hub.MapPost("/bulk/restart", BulkRestart).RequirePermission(Permission.ClientWrite, Hub);
        hub.MapPost("/bulk/suspend", BulkSuspend).RequirePermission(Permission.ClientWrite, Hub);
        hub.MapPost("/bulk/resume", BulkResume).RequirePermission(Permission.ClientWrite, Hub);
        hub.MapPost("/bulk/rewind", BulkRewind).RequirePermission(Permission.ClientWrite, Hub);
        hub.MapPost("/bulk/events", BulkRaiseEvent).RequirePermission(Permission.ClientWrite, Hub);

        hub.MapGet("/entities", ListEntities);
        var entity = hub.MapGroup("/entities/{entityId}");
        entity.MapGet("/", GetEntity);
        entity.MapGet("/state", DownloadEntityState);
        entity.MapPost("/signal", SignalEntity).RequirePermission(Permission.ClientWrite, Hub);
        entity.MapDelete("/", DeleteEntity).RequirePermission(Permission.Admin, Hub);
        return app;
    }

    static IEnumerable<TaskHub> Readable(TaskHubRegistry hubs, AccessControl access, HttpContext http) =>
        hubs.Hubs.Where(h => access.IsAllowed(http.User, Permission.Read, h.Name));

    /// <summary>The hubs the caller may read: this replica's and, with replicas, the ones other replicas own.</summary>
    static List<string> ReadableNames(TaskHubRegistry hubs, ScaleOut.HubOwnership ownership, AccessControl access, HttpContext http) =>
        hubs.Hubs.Select(h => h.Name).Concat(ownership.RemoteHubs.Select(h => h.Hub))
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Where(name => access.IsAllowed(http.User, Permission.Read, name))
            .Order(StringComparer.OrdinalIgnoreCase)
            .ToList();

    /// <summary>This replica's entries first; another replica's entry for the same hub is dropped (it moved meanwhile).</summary>
    static List<T> Merge<T>(List<T> local, IEnumerable<T> remote, Func<T, string> name)
    {
        var names = new HashSet<string>(local.Select(name), StringComparer.OrdinalIgnoreCase);
        return local.Concat(remote.Where(r => names.Add(name(r)))).OrderBy(name, StringComparer.OrdinalIgnoreCase).ToList();
    }

    static async ValueTask<object?> HandleErrors(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        bool write = !HttpMethods.IsGet(context.Request.Method);
        var target = context.Request.RouteValues.TryGetValue("hub", out var routeHub) && routeHub is string name
            ? context.RequestServices.GetService<TaskHubRegistry>()?.Find(name)
            : null;
        try
        {
            // While the store is down a write is refused up front, before its request is read. Each write completes
            // only once the store has committed it (the task hub's write operations wait for their commit).
            if (write) target?.EnsureWritable();
            return await next(invocation);
        }
        catch (ApiException e)
        {
            return ApiErrors.Problem(e.StatusCode, e.Title, e.Message, context);
        }
        catch (TaskHubException e)
        {
            return ApiErrors.ToProblem(e, context);
        }
        finally
        {
            // Counts change with every write.
            if (write && target is not null) CountCache.Invalidate(target);
        }
    }

    static IResult Json<T>(T value, int statusCode = StatusCodes.Status200OK) =>
        Results.Json(value, ApiJson.Options, statusCode: statusCode);

    static TaskHub Find(TaskHubRegistry hubs, string name) =>
        hubs.Find(name) ?? throw ApiException.NotFound($"task hub '{name}' not found");

    static string Id(HttpContext context, string id)
    {
        var value = ApiRequests.PathId(context, id, IdSegment);
        RequestRules.InstanceId(value);
        return value;
    }

    static DateTime Now => DateTime.UtcNow;

    // ---- Hub overview ----

    static async Task<IResult> Overview(string hub, HttpRequest request, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var filter = ApiRequests.Filter(request);
        int minutes = ApiRequests.Int(request, "minutes", 15, 1, 60);
        return Json(new HubOverview(h.Name, h.InstanceCount, await Counts(h, filter, CountCache.Key(request)), Throughput(h, minutes), BacklogOf(h), Workers(h)));
    }

    static readonly TaskHub.InstanceFilter Unfiltered = new();

    static async Task<StatusCounts> Counts(TaskHub hub, TaskHub.InstanceFilter filter, string key)
    {
        // Without a filter the hub's live counters answer at once; a filter needs a scan (reused for a moment).
        var counts = filter with { Statuses = null } == Unfiltered ? LiveCounts(hub) : await CountCache.Get(hub, filter, key);
        var result = new Dictionary<string, int>(ShownStatuses.Length);
        int total = 0;
        foreach (var status in ShownStatuses)
        {
            int n = counts.GetValueOrDefault(status);
            result[HistoryViews.StatusName(status)] = n;
            if (filter.Statuses is not { Count: > 0 } || filter.Statuses.Contains(status)) total += n;
        }

        return new StatusCounts(result, total);
    }

    static Dictionary<OrchestrationStatus, int> LiveCounts(TaskHub hub)
    {
        var live = hub.GetStatusCounts();
        var counts = new Dictionary<OrchestrationStatus, int>(live.Length);
        for (int i = 0; i < live.Length; i++) counts[(OrchestrationStatus)i] = live[i];
        return counts;
    }

    static List<ThroughputMinute> Throughput(TaskHub hub, int minutes) =>
        hub.GetThroughput(minutes).Select(p => new ThroughputMinute(p.Minute, p.Started, p.Finished)).ToList();

    static HubScale ScaleOf(TaskHub hub)
    {
        var b = hub.GetBacklog();
        return new HubScale(hub.Name, b.Orchestrations, b.Activities, b.Entities, b.Pending, b.InFlight, b.Pending + b.InFlight);
    }

    static Backlog BacklogOf(TaskHub hub)
    {
        var b = hub.GetBacklog();
        return new Backlog(b.Orchestrations, b.Activities, b.Entities);
    }

    static BacklogDetail BacklogDetailOf(TaskHub hub)
    {
        var groups = hub.GetBacklogGroups();
        int Count(WorkKind kind) => groups.Where(g => g.Kind == kind).Sum(g => g.Count);
        return new BacklogDetail(Count(WorkKind.Orchestration), Count(WorkKind.Activity), Count(WorkKind.Entity),
            groups.Select(g => new BacklogGroupView(TypeName(g.Kind), g.Name, g.Version, g.Count, g.AcceptingWorkers)).ToList());
    }

    static string TypeName(WorkKind kind) => kind switch
    {
        WorkKind.Orchestration => "orchestration",
        WorkKind.Activity => "activity",
        _ => "entity",
    };

    static List<Worker> Workers(TaskHub hub) => hub.GetWorkers()
        .Select(w => new Worker(w.WorkerId, w.TaskHub, w.ConnectedAt, w.OrchestrationsInFlight, w.ActivitiesInFlight, w.EntitiesInFlight,
            w.Orchestrations is null ? null : new WorkerFilterView(Names(w.Orchestrations), Names(w.Activities!), Names(w.Entities!))))
        .ToList();

    static List<NameFilter> Names(WorkFilter filter) => filter.Entries().Select(e => new NameFilter(e.Name, e.Versions)).ToList();

    // ---- Orchestrations ----

    static async Task<IResult> List(string hub, HttpRequest request, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var filter = ApiRequests.Filter(request);
        int pageSize = ApiRequests.Int(request, "pageSize", ApiRequests.DefaultPageSize, 1, TaskHub.MaxPageSize);
        string? after = ApiRequests.Cursor(request, "after");
        string? before = ApiRequests.Cursor(request, "before");
        if (after is not null && before is not null) throw ApiException.BadRequest("use either after or before, not both");
        var now = Now;

        if (before is null)
        {
            var (page, next) = await h.QueryAsync(filter, pageSize, after, includePayloads: false);
            string? previous = after is not null && page.Count > 0 ? page[0].InstanceId : null;
            return Json(new OrchestrationPage(page.Select(s => ToSummary(s, now)).ToList(), next, previous));
        }

        // The page that ends just before the cursor: walk the matching ids in bounded batches and keep the last pageSize + 1.
        var window = new Queue<string>(pageSize + 1);
        string? cursor = null;
        bool done = false;
        while (!done)
        {
            var (ids, next) = await h.ListIdsAsync(filter, TaskHub.MaxPageSize, cursor);
            foreach (var id in ids)
            {
                if (InstanceIdOrder.Instance.Compare(id, before) >= 0)
                {
                    done = true;
                    break;
                }

                if (window.Count == pageSize + 1) window.Dequeue();
                window.Enqueue(id);
            }

            if (next is null) break;
            cursor = next;
        }

        string? start = null;
        bool more = window.Count == pageSize + 1;
        if (more) start = window.Dequeue();
        if (window.Count == 0) return Json(new OrchestrationPage([], null, null));
        string last = window.Last();
        var (items, _) = await h.QueryAsync(filter, window.Count, start, includePayloads: false);
        items.RemoveAll(s => InstanceIdOrder.Instance.Compare(s.InstanceId, last) > 0);
        return Json(new OrchestrationPage(items.Select(s => ToSummary(s, now)).ToList(),
            items.Count > 0 ? items[^1].InstanceId : null, more && items.Count > 0 ? items[0].InstanceId : null));
    }

    static OrchestrationSummary ToSummary(OrchestrationState state, DateTime now) => HistoryViews.ToSummary(state, now);

    static async Task<IResult> Start(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = await hubs.ResolveAsync(hub);
        var body = await ApiRequests.Body<StartRequest>(request);
        var create = new CreateInstanceRequest
        {
            InstanceId = string.IsNullOrEmpty(body.InstanceId) ? Guid.NewGuid().ToString("N") : body.InstanceId,
            Name = body.Name ?? "",
        };
        RequestRules.InstanceId(create.InstanceId);
        RequestRules.Name(create.Name);
        if (!string.IsNullOrEmpty(body.Version)) create.Version = body.Version;
        var input = ApiRequests.Serialized(body.Input);
        RequestRules.Payload(input, "input", options.MaxPayloadBytes);
        if (input is not null) create.Input = input;
        if (body.Tags is { Count: > 0 } tags)
        {
            RequestRules.Tags(tags);
            create.Tags.Add(tags);
        }

        create.ScheduledStartTimestamp = RequestRules.Scheduled(ApiRequests.Utc(body.ScheduledStartTime));
        var id = await h.StartInstanceAsync(create);
        return Results.Json(new StartResponse(id), ApiJson.Options, statusCode: StatusCodes.Status201Created);
    }

    static async Task<IResult> Get(string hub, string id, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        int limit = ApiRequests.Int(context.Request, "payloadLimit", ApiRequests.DefaultPayloadLimit, 0, ApiRequests.MaxPayloadLimit);
        var state = await h.GetCommittedStateAsync(instanceId, includePayloads: true) ?? throw TaskHubException.InstanceNotFound(instanceId);
        return Json(HistoryViews.ToDetail(state, Now, limit));
    }

    static async Task<List<HistoryEvent>> RequireHistory(TaskHub hub, string instanceId) =>
        await hub.GetHistoryAsync(instanceId, null) ?? throw TaskHubException.InstanceNotFound(instanceId);

    static async Task<IResult> History(string hub, string id, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        int limit = ApiRequests.Int(context.Request, "payloadLimit", ApiRequests.DefaultPayloadLimit, 0, ApiRequests.MaxPayloadLimit);
        var history = await RequireHistory(h, instanceId);
        return Json(HistoryViews.ToViews(history, limit));
    }

    static async Task<IResult> EventPayload(string hub, string id, int index, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var history = await RequireHistory(h, instanceId);
        if (index < 0 || index >= history.Count)
            throw ApiException.NotFound($"orchestration instance '{instanceId}' has {history.Count} history events; there is no event {index}");
        var payload = HistoryViews.PayloadOf(history[index]) ?? throw ApiException.NotFound($"history event {index} has no payload");
        return Download(payload, $"{instanceId}-event-{index}.json");
    }

    static async Task<IResult> TimelineOf(string hub, string id, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        return Json(HistoryViews.ToTimeline(await RequireHistory(h, instanceId)));
    }

    static async Task<IResult> DownloadPayload(string hub, string id, string kind, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var state = await h.GetStateAsync(instanceId, includePayloads: true) ?? throw TaskHubException.InstanceNotFound(instanceId);
        string? value = kind.ToLowerInvariant() switch
        {
            "input" => state.Input,
            "output" => state.Output,
            "customstatus" => state.CustomStatus,
            _ => throw ApiException.NotFound($"payload '{kind}' does not exist; use input, output or customStatus"),
        };
        return value is null
            ? throw ApiException.NotFound($"orchestration instance '{instanceId}' has no {kind}")
            : Download(value, $"{instanceId}-{kind}.json");
    }

    static IResult Download(string payload, string fileName)
    {
        var safeName = new string(fileName.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return Results.File(System.Text.Encoding.UTF8.GetBytes(payload), "application/json", safeName);
    }

    // ---- Actions on one instance ----

    static async Task<IResult> Suspend(string hub, string id, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<ReasonRequest>(context.Request);
        RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes);
        await h.SuspendAsync(instanceId, body.Reason);
        return Results.Accepted();
    }

    static async Task<IResult> Resume(string hub, string id, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<ReasonRequest>(context.Request);
        RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes);
        await h.ResumeAsync(instanceId, body.Reason);
        return Results.Accepted();
    }

    static async Task<IResult> Terminate(string hub, string id, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<TerminateRequest>(context.Request);
        var output = TerminationOutput(body.Reason);
        RequestRules.Payload(output, "reason", options.MaxPayloadBytes);
        await h.TerminateAsync(instanceId, output, body.Recursive);
        return Results.Accepted();
    }

    /// <summary>The reason becomes the instance's output, serialized as a JSON string as the SDKs do.</summary>
    static string? TerminationOutput(string? reason) =>
        string.IsNullOrEmpty(reason) ? null : System.Text.Json.JsonSerializer.Serialize(reason);

    static async Task<IResult> Restart(string hub, string id, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<RestartRequest>(context.Request);
        return Json(new StartResponse(await h.RestartAsync(instanceId, body.NewInstanceId)));
    }

    static async Task<IResult> Rewind(string hub, string id, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<ReasonRequest>(context.Request);
        RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes);
        await h.RewindAsync(instanceId, body.Reason);
        return Results.Accepted();
    }

    static async Task<IResult> RaiseEvent(string hub, string id, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        var body = await ApiRequests.Body<RaiseEventRequest>(context.Request);
        RequestRules.Name(body.Name);
        var input = ApiRequests.Serialized(body.Input);
        RequestRules.Payload(input, "the payload of event", options.MaxPayloadBytes, body.Name);
        await h.RaiseEventAsync(instanceId, body.Name!, input);
        return Results.Accepted();
    }

    static async Task<IResult> Purge(string hub, string id, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var instanceId = Id(context, id);
        bool recursive = ApiRequests.Bool(context.Request, "recursive", true);
        if (await h.GetStateAsync(instanceId, includePayloads: false) is null) throw TaskHubException.InstanceNotFound(instanceId);
        return Json(new PurgeResponse(await h.PurgeAsync(instanceId, recursive), true));
    }

    // ---- Bulk actions ----

    /// <summary>
    /// The instances a bulk action targets, collected before acting so that instances the action itself creates or
    /// changes are never visited twice. At most <paramref name="limit"/>; Complete says whether the selection was exhausted.
    /// </summary>
    static async Task<(List<OrchestrationState> Targets, bool Complete)> SelectTargets(TaskHub hub, BulkRequest body, int limit)
    {
        var targets = new List<OrchestrationState>();
        if (body.InstanceIds is { } ids)
        {
            if (ids.Count > limit) throw ApiException.BadRequest($"instanceIds has {ids.Count} entries; the limit is {limit}");
            foreach (var id in ids.Distinct(StringComparer.Ordinal))
            {
                RequestRules.InstanceId(id, "instanceIds");
                if (await hub.GetStateAsync(id, includePayloads: false) is { } state) targets.Add(state);
            }

            return (targets, true);
        }

        var filter = ApiRequests.Filter(body.Filter);
        string? after = null;
        while (true)
        {
            var (page, next) = await hub.QueryAsync(filter, Math.Min(TaskHub.MaxPageSize, limit - targets.Count + 1), after, includePayloads: false);
            foreach (var state in page)
            {
                if (targets.Count == limit) return (targets, false);
                targets.Add(state);
            }

            if (next is null) return (targets, true);
            after = next;
        }
    }

    static int BulkLimit(BulkRequest body)
    {
        int limit = body.Limit ?? DefaultBulkLimit;
        if (limit is < 1 or > MaxBulkLimit) throw ApiException.BadRequest($"limit {limit} is invalid; use 1 to {MaxBulkLimit}");
        return limit;
    }

    static Task<IResult> BulkTerminate(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options) =>
        BulkChange(hub, request, hubs,
            body => RequestRules.Payload(TerminationOutput(body.Reason), "reason", options.MaxPayloadBytes),
            (_, s) => !HistoryViews.IsTerminal(s.OrchestrationStatus),
            (h, ids, body) => h.TerminateEachAsync(ids, TerminationOutput(body.Reason), body.Recursive));

    // Restarting under the same id replaces the instance, which only a finished instance allows.
    static Task<IResult> BulkRestart(string hub, HttpRequest request, TaskHubRegistry hubs) =>
        BulkChange(hub, request, hubs, _ => { },
            (body, s) => body.NewInstanceId || HistoryViews.IsTerminal(s.OrchestrationStatus),
            (h, ids, body) => h.RestartEachAsync(ids, body.NewInstanceId), withResults: true);

    static Task<IResult> BulkSuspend(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options) =>
        BulkChange(hub, request, hubs, body => RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes),
            (_, s) => !HistoryViews.IsTerminal(s.OrchestrationStatus) && s.OrchestrationStatus != OrchestrationStatus.Suspended,
            (h, ids, body) => h.SetSuspendedEachAsync(ids, body.Reason, suspend: true));

    static Task<IResult> BulkResume(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options) =>
        BulkChange(hub, request, hubs, body => RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes),
            (_, s) => s.OrchestrationStatus == OrchestrationStatus.Suspended,
            (h, ids, body) => h.SetSuspendedEachAsync(ids, body.Reason, suspend: false));

    // Every target is tried: one that has not failed is reported among the failures, with the reason.
    static Task<IResult> BulkRewind(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options) =>
        BulkChange(hub, request, hubs, body => RequestRules.Payload(body.Reason, "reason", options.MaxPayloadBytes),
            (_, _) => true,
            (h, ids, body) => h.RewindEachAsync(ids, body.Reason));

    static Task<IResult> BulkRaiseEvent(string hub, HttpRequest request, TaskHubRegistry hubs, SchedulerOptions options) =>
        BulkChange(hub, request, hubs,
            body =>
            {
                RequestRules.Name(body.EventName, "eventName");
                RequestRules.Payload(ApiRequests.Serialized(body.EventInput), "the payload of event", options.MaxPayloadBytes, body.EventName);
            },
            (_, s) => !HistoryViews.IsTerminal(s.OrchestrationStatus),
            (h, ids, body) => h.RaiseEventEachAsync(ids, body.EventName!, ApiRequests.Serialized(body.EventInput)));

    /// <summary>
    /// A bulk change: the request is checked, its targets selected; those the change applies to are changed (each
    /// refusal reported with its instance), the others counted as skipped.
    /// </summary>
    static async Task<IResult> BulkChange(string hub, HttpRequest request, TaskHubRegistry hubs, Action<BulkRequest> check,
        Func<BulkRequest, OrchestrationState, bool> applies, Func<TaskHub, List<string>, BulkRequest, Task<TaskHub.BulkOutcome>> change,
        bool withResults = false)
    {
        var h = Find(hubs, hub);
        var body = await ApiRequests.Body<BulkRequest>(request);
        check(body);
        var (targets, complete) = await SelectTargets(h, body, BulkLimit(body));
        var ids = targets.Where(s => applies(body, s)).Select(s => s.InstanceId).ToList();
        var outcome = await change(h, ids, body);
        return Json(new BulkResult(targets.Count, outcome.Succeeded, targets.Count - ids.Count, complete, Failures(outcome),
            withResults ? outcome.Results : null));
    }

    static List<BulkFailure> Failures(TaskHub.BulkOutcome outcome) =>
        outcome.Failures.Select(f => new BulkFailure(f.InstanceId, f.Error)).ToList();

    static async Task<IResult> BulkPurge(string hub, HttpRequest request, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var body = await ApiRequests.Body<BulkRequest>(request);
        if (body.InstanceIds is { } ids)
        {
            if (ids.Count > MaxPurgeIds) throw ApiException.BadRequest($"instanceIds has {ids.Count} entries; the limit is {MaxPurgeIds}");
            foreach (var id in ids) RequestRules.InstanceId(id, "instanceIds");
            return Json(new PurgeResponse(await h.PurgeAsync(ids, body.Recursive), true));
        }

        var (deleted, complete) = await h.PurgeAsync(ApiRequests.Filter(body.Filter), body.Recursive, BulkPurgeTimeout);
        return Json(new PurgeResponse(deleted, complete));
    }

    // ---- Entities ----

    static string EntityId(HttpContext context, string routeValue)
    {
        var id = ApiRequests.PathId(context, routeValue, IdSegment);
        RequestRules.EntityId(id, "entityId");
        return EntityIds.Normalize(id);
    }

    static EntitySummary ToEntity(EntityMetadata e, int payloadLimit)
    {
        int split = e.InstanceId.IndexOf('@', 1);
        return new EntitySummary(e.InstanceId, e.InstanceId[1..split], e.InstanceId[(split + 1)..], e.LastModifiedTime.ToDateTime(),
            e.BacklogQueueSize, string.IsNullOrEmpty(e.LockedBy) ? null : e.LockedBy, HistoryViews.Cut(e.SerializedState, payloadLimit));
    }

    static IResult ListEntities(string hub, HttpRequest request, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        int pageSize = ApiRequests.Int(request, "pageSize", ApiRequests.DefaultPageSize, 1, TaskHub.MaxPageSize);
        int limit = ApiRequests.Int(request, "payloadLimit", 200, 0, ApiRequests.MaxPayloadLimit);
        var q = request.Query;
        string? prefix = ApiRequests.Cursor(request, "prefix");
        if (prefix is not null) prefix = RequestRules.EntityIdPrefix(prefix);

        var (page, next) = h.QueryEntities(prefix, ApiRequests.Time(q["lastModifiedFrom"], "lastModifiedFrom"),
            ApiRequests.Time(q["lastModifiedTo"], "lastModifiedTo"), includeState: limit > 0, includeTransient: false,
            pageSize, ApiRequests.Cursor(request, "after"));
        return Json(new EntityPage(page.Select(e => ToEntity(e, limit)).ToList(), next));
    }

    static IResult GetEntity(string hub, string entityId, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var id = EntityId(context, entityId);
        int limit = ApiRequests.Int(context.Request, "payloadLimit", ApiRequests.DefaultPayloadLimit, 0, ApiRequests.MaxPayloadLimit);
        var entity = h.GetEntity(id, includeState: true) ?? throw ApiException.NotFound($"entity '{id}' not found");
        return Json(ToEntity(entity, limit));
    }

    static IResult DownloadEntityState(string hub, string entityId, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var id = EntityId(context, entityId);
        var entity = h.GetEntity(id, includeState: true) ?? throw ApiException.NotFound($"entity '{id}' not found");
        return Download(entity.SerializedState ?? "", $"{id}-state.json");
    }

    static async Task<IResult> SignalEntity(string hub, string entityId, HttpContext context, TaskHubRegistry hubs, SchedulerOptions options)
    {
        var h = Find(hubs, hub);
        var id = EntityId(context, entityId);
        var body = await ApiRequests.Body<EntitySignalRequest>(context.Request);
        RequestRules.Name(body.Operation, "operation");
        var input = ApiRequests.Serialized(body.Input);
        RequestRules.Payload(input, "the input of operation", options.MaxPayloadBytes, body.Operation);
        var signal = new Microsoft.DurableTask.Protobuf.SignalEntityRequest
        {
            InstanceId = id, Name = body.Operation, RequestId = Guid.NewGuid().ToString(),
        };
        if (input is not null) signal.Input = input;
        signal.ScheduledTime = RequestRules.Scheduled(ApiRequests.Utc(body.ScheduledTime));
        await h.SignalEntityAsync(signal);
        return Results.Accepted();
    }

    static async Task<IResult> DeleteEntity(string hub, string entityId, HttpContext context, TaskHubRegistry hubs)
    {
        var h = Find(hubs, hub);
        var id = EntityId(context, entityId);
        return await h.PurgeEntityAsync(id) == 0
            ? throw ApiException.NotFound($"entity '{id}' has no state to delete")
            : Json(new PurgeResponse(1, true));
    }
}
