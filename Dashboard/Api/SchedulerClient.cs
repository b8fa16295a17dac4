using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using DurableTask.Dashboard.Auth;

namespace DurableTask.Dashboard.Api;

/// <summary>
/// Typed client of the scheduler's JSON API (<c>/api/v1</c>). Every call carries the signed-in user's credential
/// (<see cref="SchedulerCredential"/>). Every failure surfaces as <see cref="SchedulerApiException"/>.
/// </summary>
public sealed class SchedulerClient(HttpClient http, SchedulerCredential credential)
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Uri? BaseAddress => http.BaseAddress;

    static string Hub(string hub) => $"api/v1/taskhubs/{Uri.EscapeDataString(hub)}";

    static string Instance(string hub, string id) => $"{Hub(hub)}/orchestrations/{Uri.EscapeDataString(id)}";

    static string WithQuery(string path, IEnumerable<KeyValuePair<string, string>> query)
    {
        var sb = new StringBuilder(path);
        char sep = path.Contains('?') ? '&' : '?';
        foreach (var (k, v) in query)
        {
            sb.Append(sep).Append(Uri.EscapeDataString(k)).Append('=').Append(Uri.EscapeDataString(v));
            sep = '&';
        }

        return sb.ToString();
    }

    public Task<ApiInfo> GetInfoAsync(CancellationToken ct = default) => GetAsync<ApiInfo>("api/v1", ct);

    public Task<CallerIdentity> GetMeAsync(CancellationToken ct = default) => GetAsync<CallerIdentity>("api/v1/me", ct);

    public Task<List<TaskHubSummary>> GetTaskHubsAsync(CancellationToken ct = default) => GetAsync<List<TaskHubSummary>>("api/v1/taskhubs", ct);

    public Task<HubOverview> GetOverviewAsync(string hub, OrchestrationFilter filter, CancellationToken ct = default) =>
        GetAsync<HubOverview>(WithQuery(Hub(hub), filter.ToQuery()), ct);

    public Task<StatusCounts> GetCountsAsync(string hub, OrchestrationFilter filter, CancellationToken ct = default) =>
        GetAsync<StatusCounts>(WithQuery($"{Hub(hub)}/counts", filter.ToQuery()), ct);

    public Task<List<Worker>> GetWorkersAsync(string hub, CancellationToken ct = default) => GetAsync<List<Worker>>($"{Hub(hub)}/workers", ct);

    public Task<BacklogDetail> GetBacklogAsync(string hub, CancellationToken ct = default) => GetAsync<BacklogDetail>($"{Hub(hub)}/backlog", ct);

    public Task<OrchestrationPage> ListAsync(string hub, OrchestrationFilter filter, int pageSize, string? after, string? before, CancellationToken ct = default)
    {
        var query = filter.ToQuery().Append(new("pageSize", pageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (!string.IsNullOrEmpty(after)) query = query.Append(new("after", after));
        if (!string.IsNullOrEmpty(before)) query = query.Append(new("before", before));
        return GetAsync<OrchestrationPage>(WithQuery($"{Hub(hub)}/orchestrations", query), ct);
    }

    public Task<OrchestrationDetail> GetInstanceAsync(string hub, string id, int payloadLimit, CancellationToken ct = default) =>
        GetAsync<OrchestrationDetail>($"{Instance(hub, id)}?payloadLimit={payloadLimit}", ct);

    public Task<List<HistoryEventView>> GetHistoryAsync(string hub, string id, int payloadLimit, CancellationToken ct = default) =>
        GetAsync<List<HistoryEventView>>($"{Instance(hub, id)}/history?payloadLimit={payloadLimit}", ct);

    public Task<Timeline> GetTimelineAsync(string hub, string id, CancellationToken ct = default) =>
        GetAsync<Timeline>($"{Instance(hub, id)}/timeline", ct);

    public Task<EntityPage> ListEntitiesAsync(string hub, string? prefix, int pageSize, string? after, CancellationToken ct = default)
    {
        var query = new List<KeyValuePair<string, string>> { new("pageSize", pageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
        if (!string.IsNullOrEmpty(prefix)) query.Add(new("prefix", prefix));
        if (!string.IsNullOrEmpty(after)) query.Add(new("after", after));
        return GetAsync<EntityPage>(WithQuery($"{Hub(hub)}/entities", query), ct);
    }

    /// <summary>The full payload (input, output, customStatus) or a history event's payload, as stored.</summary>
    public async Task<HttpResponseMessage> DownloadAsync(string hub, string id, string? kind, int? eventIndex, CancellationToken ct = default)
    {
        var path = eventIndex is { } i ? $"{Instance(hub, id)}/history/{i}/payload" : $"{Instance(hub, id)}/payloads/{Uri.EscapeDataString(kind ?? "")}";
        var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path), ct, HttpCompletionOption.ResponseHeadersRead);
        return response;
    }

    public async Task<string> StartAsync(string hub, StartOrchestration request, CancellationToken ct = default) =>
        (await PostAsync<StartResponse>($"{Hub(hub)}/orchestrations", request, ct)).InstanceId;

    public Task SuspendAsync(string hub, string id, string? reason, CancellationToken ct = default) =>
        PostAsync<object>($"{Instance(hub, id)}/suspend", new { reason }, ct);

    public Task ResumeAsync(string hub, string id, string? reason, CancellationToken ct = default) =>
        PostAsync<object>($"{Instance(hub, id)}/resume", new { reason }, ct);

    public Task TerminateAsync(string hub, string id, string? reason, bool recursive, CancellationToken ct = default) =>
        PostAsync<object>($"{Instance(hub, id)}/terminate", new { reason, recursive }, ct);

    public async Task<string> RestartAsync(string hub, string id, bool newInstanceId, CancellationToken ct = default) =>
        (await PostAsync<StartResponse>($"{Instance(hub, id)}/restart", new { newInstanceId }, ct)).InstanceId;

    public Task RewindAsync(string hub, string id, string? reason, CancellationToken ct = default) =>
        PostAsync<object>($"{Instance(hub, id)}/rewind", new { reason }, ct);

    public Task RaiseEventAsync(string hub, string id, string name, JsonElement? input, CancellationToken ct = default) =>
        PostAsync<object>($"{Instance(hub, id)}/events", new { name, input }, ct);

    public async Task<PurgeResponse> PurgeAsync(string hub, string id, bool recursive, CancellationToken ct = default)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"{Instance(hub, id)}?recursive={(recursive ? "true" : "false")}"), ct);
        return await ReadAsync<PurgeResponse>(response, ct);
    }

    public Task<BulkResult> BulkTerminateAsync(string hub, OrchestrationFilter filter, IReadOnlyCollection<string>? ids, string? reason, CancellationToken ct = default) =>
        PostAsync<BulkResult>($"{Hub(hub)}/bulk/terminate", new { instanceIds = ids, filter = ids is null ? filter.ToBody() : null, reason, recursive = true }, ct);

    public Task<BulkResult> BulkRestartAsync(string hub, OrchestrationFilter filter, IReadOnlyCollection<string>? ids, bool newInstanceId, CancellationToken ct = default) =>
        PostAsync<BulkResult>($"{Hub(hub)}/bulk/restart", new { instanceIds = ids, filter = ids is null ? filter.ToBody() : null, newInstanceId }, ct);

    public Task<PurgeResponse> BulkPurgeAsync(string hub, OrchestrationFilter filter, IReadOnlyCollection<string>? ids, CancellationToken ct = default) =>
        PostAsync<PurgeResponse>($"{Hub(hub)}/bulk/purge", new { instanceIds = ids, filter = ids is null ? filter.ToBody() : null, recursive = true }, ct);

    /// <summary>
    /// A change to each of <paramref name="ids"/>: <paramref name="action"/> is <c>suspend</c>, <c>resume</c>,
    /// <c>rewind</c> or <c>events</c> (raise <paramref name="eventName"/> with <paramref name="eventInput"/>).
    /// </summary>
    public Task<BulkResult> BulkChangeAsync(string hub, string action, IReadOnlyCollection<string> ids, string? reason,
        string? eventName = null, JsonElement? eventInput = null, CancellationToken ct = default) =>
        PostAsync<BulkResult>($"{Hub(hub)}/bulk/{action}", new { instanceIds = ids, reason, eventName, eventInput }, ct);

    /// <summary>The ids of the instances matching <paramref name="filter"/>, in id order, at most <paramref name="limit"/>.</summary>
    public async Task<List<string>> MatchingIdsAsync(string hub, OrchestrationFilter filter, int limit, CancellationToken ct = default)
    {
        var ids = new List<string>();
        string? after = null;
        do
        {
            var page = await ListAsync(hub, filter, Math.Min(1000, limit - ids.Count), after, null, ct);
            ids.AddRange(page.Items.Select(i => i.InstanceId));
            after = page.Next;
        }
        while (after is not null && ids.Count < limit);
        return ids;
    }

    public Task<EntitySummary> GetEntityAsync(string hub, string entityId, CancellationToken ct = default) =>
        GetAsync<EntitySummary>($"{Hub(hub)}/entities/{Uri.EscapeDataString(entityId)}", ct);

    public Task SignalEntityAsync(string hub, string entityId, string operation, JsonElement? input, CancellationToken ct = default) =>
        PostAsync<object>($"{Hub(hub)}/entities/{Uri.EscapeDataString(entityId)}/signal", new { operation, input }, ct);

    public async Task DeleteEntityAsync(string hub, string entityId, CancellationToken ct = default)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"{Hub(hub)}/entities/{Uri.EscapeDataString(entityId)}"), ct);
    }

    async Task<T> GetAsync<T>(string path, CancellationToken ct)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path), ct);
        return await ReadAsync<T>(response, ct);
    }

    async Task<T> PostAsync<T>(string path, object body, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: Json) };
        using var response = await SendAsync(request, ct);
        if (typeof(T) == typeof(object)) return default!;
        return await ReadAsync<T>(response, ct);
    }

    async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage response;
        await credential.ApplyAsync(request);
        try
        {
            response = await http.SendAsync(request, completion, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new SchedulerApiException(null, "Scheduler unreachable", $"the scheduler API at {http.BaseAddress} did not answer: {e.Message}");
        }
        catch (Polly.ExecutionRejectedException e) when (!ct.IsCancellationRequested)
        {
            throw new SchedulerApiException(null, "Scheduler unreachable", $"the scheduler API at {http.BaseAddress} did not answer: {e.Message}");
        }

        if (response.IsSuccessStatusCode) return response;
        using (response)
        {
            var problem = await ProblemAsync(response, ct);
            throw response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                ? new SchedulerApiException(response.StatusCode, problem.Title, problem.Detail, RequiredPermission(request), HubOf(request))
                : problem;
        }
    }

    /// <summary>The permission the scheduler requires for a call (docs/security.md), to explain a refusal.</summary>
    static string RequiredPermission(HttpRequestMessage request)
    {
        var path = request.RequestUri?.OriginalString ?? "";
        int q = path.IndexOf('?');
        if (q >= 0) path = path[..q];
        if (request.Method == HttpMethod.Get || request.Method == HttpMethod.Head) return UserAccess.Read;
        if (request.Method == HttpMethod.Delete || path.EndsWith("/bulk/purge", StringComparison.Ordinal)) return UserAccess.Admin;
        return UserAccess.ClientWrite;
    }

    static string? HubOf(HttpRequestMessage request)
    {
        var segments = (request.RequestUri?.OriginalString ?? "").Split('?')[0].Split('/', StringSplitOptions.RemoveEmptyEntries);
        int i = Array.IndexOf(segments, "taskhubs");
        return i >= 0 && i + 1 < segments.Length ? Uri.UnescapeDataString(segments[i + 1]) : null;
    }

    static async Task<SchedulerApiException> ProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        string title = response.ReasonPhrase ?? response.StatusCode.ToString();
        string detail = "";
        try
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (text.Length > 0)
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String) title = t.GetString()!;
                if (doc.RootElement.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String) detail = d.GetString()!;
            }
        }
        catch (JsonException)
        {
            // Not a problem document: the status line says enough.
        }

        return new SchedulerApiException(response.StatusCode, title, detail.Length > 0 ? detail : title);
    }

    static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.StatusCode == HttpStatusCode.NoContent) return default!;
        return await response.Content.ReadFromJsonAsync<T>(Json, ct)
               ?? throw new SchedulerApiException(response.StatusCode, "Empty answer", "the scheduler API answered with an empty body");
    }
}
