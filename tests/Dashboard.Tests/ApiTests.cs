using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableTask.Dashboard.Tests;

/// <summary>The scheduler's JSON API, called over HTTP, with instances created and run by the real .NET SDK.</summary>
[Collection(DashboardCollection.Name)]
public sealed class ApiTests(DashboardFixture fx)
{
    const string Hub = "api/v1/taskhubs/default";

    HttpClient Http => fx.Api;

    static string NewPrefix() => $"t{Guid.NewGuid():N}"[..9] + "-";

    async Task<JsonElement> Get(string url, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await Http.GetAsync(url);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"GET {url}: expected {expected}, got {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    async Task<JsonElement> Send(HttpMethod method, string url, object? body, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is string raw) request.Content = new StringContent(raw, Encoding.UTF8, "application/json");
        else if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{method} {url}: expected {expected}, got {(int)response.StatusCode} {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    Task<JsonElement> Post(string url, object? body, HttpStatusCode expected = HttpStatusCode.OK) => Send(HttpMethod.Post, url, body, expected);

    /// <summary>Asserts an RFC 7807 problem document with the given status whose detail mentions <paramref name="detailContains"/>.</summary>
    async Task Problem(HttpMethod method, string url, object? body, HttpStatusCode status, string detailContains)
    {
        using var request = new HttpRequestMessage(method, url);
        if (body is string raw) request.Content = new StringContent(raw, Encoding.UTF8, "application/json");
        else if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{method} {url}: expected {status}, got {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        Assert.Contains(detailContains, problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
    }

    static List<string> Ids(JsonElement page) => page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("instanceId").GetString()!).ToList();

    async Task<string> Schedule(string name, object? input, string id, Dictionary<string, string>? tags = null) =>
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(name, input, new StartOrchestrationOptions(id) { Tags = tags ?? new Dictionary<string, string>() });

    [Fact]
    public async Task Scale_reports_waiting_work_per_hub_for_autoscalers()
    {
        // The sales hub has no worker: what is started there waits, and the scale signal says so.
        var p = NewPrefix();
        var ids = Enumerable.Range(0, 3).Select(i => $"{p}scale-{i}").ToList();
        foreach (var id in ids) await Post("api/v1/taskhubs/sales/orchestrations", new { name = "Greet", instanceId = id }, HttpStatusCode.Created);
        try
        {
            var scale = await Get("api/v1/taskhubs/sales/scale");
            Assert.Equal("sales", scale.GetProperty("taskHub").GetString());
            Assert.True(scale.GetProperty("orchestrations").GetInt32() >= 3);
            Assert.Equal(0, scale.GetProperty("inFlight").GetInt32());
            Assert.Equal(scale.GetProperty("pending").GetInt32() + scale.GetProperty("inFlight").GetInt32(), scale.GetProperty("total").GetInt32());

            var all = await Get("api/v1/scale");
            var sales = Assert.Single(all.GetProperty("taskHubs").EnumerateArray(), h => h.GetProperty("taskHub").GetString() == "sales");
            Assert.True(sales.GetProperty("total").GetInt32() >= 3);
            Assert.True(all.GetProperty("total").GetInt32() >= sales.GetProperty("total").GetInt32());
        }
        finally
        {
            foreach (var id in ids) await Http.PostAsJsonAsync($"api/v1/taskhubs/sales/orchestrations/{id}/terminate", new { reason = "done" });
        }
    }

    [Fact]
    public async Task InfoAndTaskHubs()
    {
        var info = await Get("api/v1");
        Assert.Equal("v1", info.GetProperty("apiVersion").GetString());
        Assert.False(info.GetProperty("authenticationEnabled").GetBoolean());
        Assert.Equal(["default", "sales"], info.GetProperty("taskHubs").EnumerateArray().Select(h => h.GetString()));

        var hubs = await Get("api/v1/taskhubs");
        var hub = Assert.Single(hubs.EnumerateArray(), h => h.GetProperty("name").GetString() == "default");
        Assert.True(hub.GetProperty("workerCount").GetInt32() >= 1);
        var sales = Assert.Single(hubs.EnumerateArray(), h => h.GetProperty("name").GetString() == "sales");
        Assert.Equal(0, sales.GetProperty("workerCount").GetInt32());

        // Hubs are separate: an instance started in one is not seen in the other.
        var id = NewPrefix() + "sales";
        await Post("api/v1/taskhubs/sales/orchestrations", new { name = "Greet", instanceId = id }, HttpStatusCode.Created);
        Assert.Equal([id], Ids(await Get($"api/v1/taskhubs/sales/orchestrations?prefix={id}")));
        Assert.Empty(Ids(await Get($"{Hub}/orchestrations?prefix={id}")));
        Assert.Equal(1, (await Get("api/v1/taskhubs/sales/counts")).GetProperty("counts").GetProperty("Pending").GetInt32());
    }

    [Fact]
    public async Task UnknownHubIsNotFound()
    {
        await Problem(HttpMethod.Get, "api/v1/taskhubs/nope", null, HttpStatusCode.NotFound, "task hub 'nope' not found");
        await Problem(HttpMethod.Get, "api/v1/taskhubs/nope/orchestrations", null, HttpStatusCode.NotFound, "nope");
        await Problem(HttpMethod.Post, "api/v1/taskhubs/nope/orchestrations", new { name = "Greet" }, HttpStatusCode.NotFound, "nope");
    }

    [Fact]
    public async Task OverviewCountsThroughputBacklogAndWorkers()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Greet, "Oslo", p + "a");
        await Schedule(Orchestrations.Failing, "pump", p + "b");
        await fx.CompleteAsync(p + "a");
        await fx.CompleteAsync(p + "b");

        var overview = await Get($"{Hub}?prefix={p}");
        Assert.Equal("default", overview.GetProperty("taskHub").GetString());
        var counts = overview.GetProperty("counts");
        Assert.Equal(2, counts.GetProperty("total").GetInt32());
        Assert.Equal(1, counts.GetProperty("counts").GetProperty("Completed").GetInt32());
        Assert.Equal(1, counts.GetProperty("counts").GetProperty("Failed").GetInt32());
        Assert.Equal(0, counts.GetProperty("counts").GetProperty("Running").GetInt32());
        Assert.True(overview.GetProperty("instanceCount").GetInt32() >= 2);

        var throughput = overview.GetProperty("throughput").EnumerateArray().ToList();
        Assert.Equal(15, throughput.Count);
        Assert.True(throughput.Sum(t => t.GetProperty("started").GetInt64()) >= 2);
        Assert.True(throughput.Sum(t => t.GetProperty("completed").GetInt64()) >= 2);
        Assert.Equal(5, (await Get($"{Hub}/throughput?minutes=5")).GetArrayLength());

        var backlog = await Get($"{Hub}/backlog");
        Assert.True(backlog.GetProperty("orchestrations").GetInt32() >= 0);
        Assert.Equal(0, backlog.GetProperty("entities").GetInt32());

        var workers = await Get($"{Hub}/workers");
        var worker = Assert.Single(workers.EnumerateArray());
        Assert.Equal("default", worker.GetProperty("taskHub").GetString());
        Assert.False(string.IsNullOrEmpty(worker.GetProperty("workerId").GetString()));
        Assert.True(worker.GetProperty("connectedAt").GetDateTime() <= DateTime.UtcNow);

        // Without a filter the hub's live counters answer; they agree with a full scan.
        var all = await Get($"{Hub}/counts");
        var scanned = await Get($"{Hub}/counts?createdFrom=2000-01-01T00:00:00Z");
        Assert.Equal(scanned.GetProperty("total").GetInt32(), all.GetProperty("total").GetInt32());
        Assert.Equal(scanned.GetProperty("counts").GetProperty("Failed").GetInt32(), all.GetProperty("counts").GetProperty("Failed").GetInt32());
        Assert.True(all.GetProperty("counts").GetProperty("Failed").GetInt32() >= 1);

        // A status filter narrows the total but every status keeps its count.
        var failedOnly = await Get($"{Hub}/counts?prefix={p}&status=Failed");
        Assert.Equal(1, failedOnly.GetProperty("total").GetInt32());
        Assert.Equal(1, failedOnly.GetProperty("counts").GetProperty("Completed").GetInt32());

        await Problem(HttpMethod.Get, $"{Hub}/throughput?minutes=0", null, HttpStatusCode.BadRequest, "minutes");
        await Problem(HttpMethod.Get, $"{Hub}/throughput?minutes=61", null, HttpStatusCode.BadRequest, "minutes");
    }

    [Fact]
    public async Task StartGetAndPayloads()
    {
        var p = NewPrefix();
        var started = await Post($"{Hub}/orchestrations",
            new { name = Orchestrations.Greet, instanceId = p + "api", input = "Rome", tags = new Dictionary<string, string> { ["team"] = "blue" } },
            HttpStatusCode.Created);
        Assert.Equal(p + "api", started.GetProperty("instanceId").GetString());
        var meta = await fx.CompleteAsync(p + "api");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, meta.RuntimeStatus);
        Assert.Equal("\"Hello, Rome! Hello, London!\"", meta.SerializedOutput);
        Assert.Equal("blue", meta.Tags["team"]);

        var detail = await Get($"{Hub}/orchestrations/{p}api");
        Assert.Equal("Completed", detail.GetProperty("status").GetString());
        Assert.Equal(Orchestrations.Greet, detail.GetProperty("name").GetString());
        Assert.Equal("\"Rome\"", detail.GetProperty("input").GetProperty("value").GetString());
        Assert.Equal("\"Hello, Rome! Hello, London!\"", detail.GetProperty("output").GetProperty("value").GetString());
        Assert.False(detail.GetProperty("output").GetProperty("truncated").GetBoolean());
        Assert.Equal("blue", detail.GetProperty("tags").GetProperty("team").GetString());
        Assert.True(detail.GetProperty("durationMs").GetDouble() >= 0);
        Assert.True(detail.TryGetProperty("completedAt", out _));

        // A generated id, and a scheduled start in the future that stays Pending.
        var generated = await Post($"{Hub}/orchestrations", new { name = Orchestrations.Greet }, HttpStatusCode.Created);
        await fx.CompleteAsync(generated.GetProperty("instanceId").GetString()!);
        var later = DateTime.UtcNow.AddHours(1);
        await Post($"{Hub}/orchestrations", new { name = Orchestrations.Greet, instanceId = p + "later", scheduledStartTime = later }, HttpStatusCode.Created);
        var pending = await Get($"{Hub}/orchestrations/{p}later");
        Assert.Equal("Pending", pending.GetProperty("status").GetString());
        Assert.Equal(later, pending.GetProperty("scheduledStartAt").GetDateTime().ToUniversalTime(), TimeSpan.FromMilliseconds(1));

        // Large payloads are cut to payloadLimit and can be downloaded whole.
        await Schedule(Orchestrations.BigOutput, 10_000, p + "big");
        await fx.CompleteAsync(p + "big");
        var big = await Get($"{Hub}/orchestrations/{p}big?payloadLimit=100");
        var output = big.GetProperty("output");
        Assert.True(output.GetProperty("truncated").GetBoolean());
        Assert.Equal(10_002, output.GetProperty("length").GetInt32());
        Assert.Equal(100, output.GetProperty("value").GetString()!.Length);
        using var download = await Http.GetAsync($"{Hub}/orchestrations/{p}big/payloads/output");
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("attachment", download.Content.Headers.ContentDisposition?.DispositionType);
        Assert.Equal(10_002, (await download.Content.ReadAsStringAsync()).Length);
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}big/payloads/customStatus", null, HttpStatusCode.NotFound, "no customStatus");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}big/payloads/secret", null, HttpStatusCode.NotFound, "input, output or customStatus");

        // The history event that carries the big result can be downloaded whole too.
        var history = await Get($"{Hub}/orchestrations/{p}big/history?payloadLimit=10");
        var completed = history.EnumerateArray().Single(e => e.GetProperty("type").GetString() == "ExecutionCompleted");
        Assert.True(completed.GetProperty("payload").GetProperty("truncated").GetBoolean());
        using var eventDownload = await Http.GetAsync($"{Hub}/orchestrations/{p}big/history/{completed.GetProperty("index").GetInt32()}/payload");
        Assert.Equal(10_002, (await eventDownload.Content.ReadAsStringAsync()).Length);
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}big/history/999/payload", null, HttpStatusCode.NotFound, "no event 999");
    }

    [Fact]
    public async Task StartRejectsBadInput()
    {
        var p = NewPrefix();
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", new { instanceId = p + "x" }, HttpStatusCode.BadRequest, "name is required");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", "{not json", HttpStatusCode.BadRequest, "not valid JSON");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", new { name = "Greet", instanceId = new string('i', 101) }, HttpStatusCode.BadRequest, "limit is 100");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", new { name = "Greet", input = new string('x', 70_000) }, HttpStatusCode.BadRequest, "maximum payload size");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", new { name = "Greet", tags = new Dictionary<string, string> { [""] = "v" } }, HttpStatusCode.BadRequest, "tag key");

        // An id that is in use by a running instance.
        await Schedule(Orchestrations.WaitForApproval, null, p + "busy");
        await fx.StartedAsync(p + "busy");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations", new { name = "Greet", instanceId = p + "busy" }, HttpStatusCode.Conflict, "already exists");
        await fx.Client.TerminateInstanceAsync(p + "busy");
    }

    [Fact]
    public async Task ListFiltersByEveryField()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Greet, "A", p + "greet-1", new() { ["env"] = "prod", ["team"] = "red" });
        await Schedule(Orchestrations.Greet, "B", p + "greet-2", new() { ["env"] = "dev" });
        await Schedule(Orchestrations.Failing, "C", p + "fail-1");
        await Schedule(Orchestrations.Parent, "D", p + "parent");
        await Schedule(Orchestrations.WaitForApproval, null, p + "wait");
        foreach (var id in new[] { "greet-1", "greet-2", "fail-1", "parent" }) await fx.CompleteAsync(p + id);
        await fx.StartedAsync(p + "wait");

        async Task<List<string>> List(string query) => Ids(await Get($"{Hub}/orchestrations?prefix={p}&{query}"));

        Assert.Equal(7, (await List("")).Count); // two children of the parent included
        Assert.Equal([p + "parent"], await List("hideSubOrchestrations=true&name=Parent"));
        Assert.Equal(5, (await List("hideSubOrchestrations=true")).Count);
        Assert.Equal([p + "parent-child-0", p + "parent-child-1"], await List("name=child"));
        Assert.Equal([p + "fail-1"], await List("status=Failed"));
        Assert.Equal([p + "fail-1", p + "wait"], await List("status=Failed,Running"));
        Assert.Equal([p + "fail-1", p + "wait"], await List("status=failed&status=running"));
        Assert.Equal([p + "greet-1", p + "greet-2"], await List("name=Greet"));
        Assert.Equal([p + "greet-1"], await List("tag=env=prod"));
        Assert.Equal([p + "greet-1", p + "greet-2"], await List("tag=env"));
        Assert.Equal([p + "greet-1"], await List("tag=env&tag=team=red"));
        Assert.Equal([p + "parent-child-0", p + "parent-child-1"], Ids(await Get($"{Hub}/orchestrations?search={p}parent-child")));
        Assert.Empty(await List($"createdFrom={DateTime.UtcNow.AddMinutes(5):O}"));
        Assert.Equal(7, (await List($"createdFrom={DateTime.UtcNow.AddMinutes(-5):O}&createdTo={DateTime.UtcNow.AddMinutes(1):O}")).Count);
        Assert.Equal(6, (await List($"completedFrom={DateTime.UtcNow.AddMinutes(-5):O}")).Count);

        var row = (await Get($"{Hub}/orchestrations?prefix={p}parent-child-0")).GetProperty("items")[0];
        Assert.Equal(p + "parent", row.GetProperty("parentInstanceId").GetString());
        Assert.Equal("Child", row.GetProperty("name").GetString());
        Assert.False(row.TryGetProperty("input", out _)); // lists carry no payloads

        await fx.Client.TerminateInstanceAsync(p + "wait");
    }

    [Fact]
    public async Task ListPagesForwardAndBackward()
    {
        var p = NewPrefix();
        var ids = Enumerable.Range(0, 7).Select(i => $"{p}{i:00}").ToList();
        foreach (var id in ids) await Schedule(Orchestrations.Greet, "x", id);
        foreach (var id in ids) await fx.CompleteAsync(id);

        var seen = new List<string>();
        var pages = new List<JsonElement>();
        string? after = null;
        do
        {
            var page = await Get($"{Hub}/orchestrations?prefix={p}&pageSize=3" + (after is null ? "" : $"&after={after}"));
            pages.Add(page);
            seen.AddRange(Ids(page));
            after = page.TryGetProperty("next", out var n) ? n.GetString() : null;
        }
        while (after is not null);

        Assert.Equal(ids, seen);
        Assert.Equal(3, pages.Count);
        Assert.False(pages[0].TryGetProperty("previous", out _));
        Assert.Equal(ids[3], pages[1].GetProperty("previous").GetString());

        // Walking back from the last page gives the same pages.
        var back = await Get($"{Hub}/orchestrations?prefix={p}&pageSize=3&before={pages[2].GetProperty("previous").GetString()}");
        Assert.Equal(ids[3..6], Ids(back));
        Assert.Equal(ids[5], back.GetProperty("next").GetString());
        var first = await Get($"{Hub}/orchestrations?prefix={p}&pageSize=3&before={back.GetProperty("previous").GetString()}");
        Assert.Equal(ids[0..3], Ids(first));
        Assert.False(first.TryGetProperty("previous", out _));

        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?pageSize=0", null, HttpStatusCode.BadRequest, "pageSize");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?pageSize=1001", null, HttpStatusCode.BadRequest, "1 to 1000");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?pageSize=ten", null, HttpStatusCode.BadRequest, "pageSize");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?after=a&before=b", null, HttpStatusCode.BadRequest, "either after or before");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?status=Bogus", null, HttpStatusCode.BadRequest, "'Bogus' is not a status");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?status=3", null, HttpStatusCode.BadRequest, "not a status");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?createdFrom=yesterday", null, HttpStatusCode.BadRequest, "createdFrom");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?hideSubOrchestrations=maybe", null, HttpStatusCode.BadRequest, "hideSubOrchestrations");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations?tag==x", null, HttpStatusCode.BadRequest, "no key");
    }

    [Fact]
    public async Task EntityCallsSignalsAndLocksAreReadInHistoryAndTimeline()
    {
        var p = NewPrefix();
        await fx.Client.Entities.SignalEntityAsync(new Microsoft.DurableTask.Entities.EntityInstanceId(nameof(Account), p + "alice"), nameof(Account.Deposit), 100);
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Transfer, $"{p}alice,{p}bob", new StartOrchestrationOptions(p + "t"));
        Assert.Equal("70", (await fx.CompleteAsync(p + "t")).SerializedOutput);

        var history = (await Get($"{Hub}/orchestrations/{p}t/history")).EnumerateArray().ToList();
        var entity = history.Where(e => e.TryGetProperty("entity", out _)).Select(e => e.GetProperty("entity")).ToList();
        string Of(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : "";
        var alice = $"@account@{p}alice";
        var bob = $"@account@{p}bob";
        var requests = entity.Where(e => Of(e, "kind") is "Call" or "Signal").Select(e => $"{Of(e, "kind")} {Of(e, "entityId")} {Of(e, "operation")}").ToList();
        Assert.Equal([$"Call {alice} Withdraw", $"Call {bob} Deposit", $"Signal {alice} Note", $"Signal {bob} Note"], requests);
        var call = entity.First(e => Of(e, "kind") == "Call");
        Assert.Equal("30", call.GetProperty("input").GetProperty("value").GetString());
        var result = entity.Single(e => Of(e, "kind") == "Result" && Of(e, "requestId") == Of(call, "requestId"));
        Assert.Equal("70", result.GetProperty("output").GetProperty("value").GetString());
        var lockRequest = entity.Single(e => Of(e, "kind") == "LockRequest");
        Assert.Equal([alice, bob], lockRequest.GetProperty("lockSet").EnumerateArray().Select(x => x.GetString()!).Order());
        Assert.Single(entity, e => Of(e, "kind") == "LockGranted" && Of(e, "requestId") == Of(lockRequest, "requestId"));
        Assert.Equal(2, entity.Count(e => Of(e, "kind") == "Unlock"));

        var items = (await Get($"{Hub}/orchestrations/{p}t/timeline")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["EntityLock", "EntityCall", "EntityCall", "EntitySignal", "EntitySignal"], items.Select(i => Of(i, "kind")));
        var held = items[0];
        Assert.Equal("Released", Of(held, "status"));
        Assert.True(held.GetProperty("acquired").GetDateTime() <= held.GetProperty("end").GetDateTime());
        Assert.Equal(("Withdraw", alice, "Completed"), (Of(items[1], "name"), Of(items[1], "entityId"), Of(items[1], "status")));
        Assert.True(items[1].GetProperty("endIndex").GetInt32() > items[1].GetProperty("startIndex").GetInt32());
        // The .NET SDK over plain gRPC uses the older encoding: the raw message stays the event's payload.
        var sent = history[items[1].GetProperty("startIndex").GetInt32()];
        Assert.Equal(("EventSent", "op", alice), (Of(sent, "type"), Of(sent, "name"), Of(sent, "instanceId")));
        Assert.Contains("\"op\":\"Withdraw\"", sent.GetProperty("payload").GetProperty("value").GetString());
    }

    [Fact]
    public async Task HistoryAndTimelineOfSubOrchestrations()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Parent, "Lima", p + "p");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await fx.CompleteAsync(p + "p")).RuntimeStatus);

        var history = (await Get($"{Hub}/orchestrations/{p}p/history")).EnumerateArray().ToList();
        var types = history.Select(e => e.GetProperty("type").GetString()).ToList();
        Assert.Equal("ExecutionStarted", types.First(t => t != "OrchestratorStarted"));
        Assert.Equal(2, types.Count(t => t == "SubOrchestrationInstanceCreated"));
        Assert.Equal(2, types.Count(t => t == "SubOrchestrationInstanceCompleted"));
        Assert.Contains("TaskScheduled", types);
        Assert.Contains("ExecutionCompleted", types);
        var created = history.First(e => e.GetProperty("type").GetString() == "SubOrchestrationInstanceCreated");
        Assert.StartsWith(p + "p-child-", created.GetProperty("instanceId").GetString());
        Assert.Equal("Child", created.GetProperty("name").GetString());
        Assert.Equal(Enumerable.Range(0, history.Count), history.Select(e => e.GetProperty("index").GetInt32()));
        Assert.True(history.All(e => e.GetProperty("timestamp").GetDateTime() > DateTime.UtcNow.AddMinutes(-5)));

        var timeline = await Get($"{Hub}/orchestrations/{p}p/timeline");
        var items = timeline.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["SubOrchestration", "SubOrchestration", "Activity"], items.Select(i => i.GetProperty("kind").GetString()));
        Assert.All(items, i =>
        {
            Assert.Equal("Completed", i.GetProperty("status").GetString());
            Assert.True(i.GetProperty("end").GetDateTime() >= i.GetProperty("start").GetDateTime());
        });
        Assert.Equal(p + "p-child-0", items[0].GetProperty("instanceId").GetString());
        Assert.True(timeline.GetProperty("end").GetDateTime() >= timeline.GetProperty("start").GetDateTime());

        // The child: a 200 ms timer, then an activity; its parent is linked.
        var child = await Get($"{Hub}/orchestrations/{p}p-child-1");
        Assert.Equal(p + "p", child.GetProperty("parentInstanceId").GetString());
        var childItems = (await Get($"{Hub}/orchestrations/{p}p-child-1/timeline")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal("Timer", childItems[0].GetProperty("kind").GetString());
        Assert.Equal("Fired", childItems[0].GetProperty("status").GetString());
        var timerSpan = childItems[0].GetProperty("end").GetDateTime() - childItems[0].GetProperty("start").GetDateTime();
        Assert.True(timerSpan >= TimeSpan.FromMilliseconds(150), $"timer bar spans {timerSpan}");
        Assert.Equal("Activity", childItems[1].GetProperty("kind").GetString());
        Assert.Equal("Say", childItems[1].GetProperty("name").GetString());
        var fired = (await Get($"{Hub}/orchestrations/{p}p-child-1/history")).EnumerateArray().Single(e => e.GetProperty("type").GetString() == "TimerFired");
        Assert.Equal(childItems[0].GetProperty("scheduledId").GetInt32(), fired.GetProperty("timerId").GetInt32());

        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}missing/history", null, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}missing/timeline", null, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Get, $"{Hub}/orchestrations/{p}missing", null, HttpStatusCode.NotFound, $"'{p}missing' not found");
    }

    [Fact]
    public async Task FailureDetailsWithInnerFailures()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Failing, "gearbox", p + "f");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await fx.CompleteAsync(p + "f")).RuntimeStatus);

        var detail = await Get($"{Hub}/orchestrations/{p}f");
        Assert.Equal("Failed", detail.GetProperty("status").GetString());
        var failure = detail.GetProperty("failure");
        Assert.False(string.IsNullOrEmpty(failure.GetProperty("errorType").GetString()));
        // The chain reaches the activity's exception and its cause.
        var messages = new List<string>();
        for (var f = failure; ; f = f.GetProperty("innerFailure"))
        {
            messages.Add(f.GetProperty("errorMessage").GetString()!);
            if (!f.TryGetProperty("innerFailure", out _)) break;
        }

        Assert.Contains(messages, m => m.Contains("the activity gave up"));
        Assert.Contains(messages, m => m.Contains("the gearbox is broken"));

        var taskFailed = (await Get($"{Hub}/orchestrations/{p}f/history")).EnumerateArray().Single(e => e.GetProperty("type").GetString() == "TaskFailed");
        Assert.Contains("the activity gave up", taskFailed.GetProperty("failure").GetProperty("errorMessage").GetString());
        var bar = Assert.Single((await Get($"{Hub}/orchestrations/{p}f/timeline")).GetProperty("items").EnumerateArray());
        Assert.Equal("Failed", bar.GetProperty("status").GetString());
        Assert.Equal("Explode", bar.GetProperty("name").GetString());
    }

    [Fact]
    public async Task SuspendResumeRaiseAndTerminate()
    {
        var p = NewPrefix();
        var id = p + "w";
        await Schedule(Orchestrations.WaitForApproval, null, id);
        await fx.StartedAsync(id);
        await DashboardFixture.Eventually(async () =>
            (await fx.Client.GetInstanceAsync(id, true))?.SerializedCustomStatus == "\"waiting for approval\"", "the custom status is set");
        var detail = await Get($"{Hub}/orchestrations/{id}");
        Assert.Equal("\"waiting for approval\"", detail.GetProperty("customStatus").GetProperty("value").GetString());

        await Post($"{Hub}/orchestrations/{id}/suspend", new { reason = "maintenance" }, HttpStatusCode.Accepted);
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(id))?.RuntimeStatus == OrchestrationRuntimeStatus.Suspended, "suspended");
        await Post($"{Hub}/orchestrations/{id}/resume", null, HttpStatusCode.Accepted);
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(id))?.RuntimeStatus == OrchestrationRuntimeStatus.Running, "resumed");

        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{id}/events", new { input = 1 }, HttpStatusCode.BadRequest, "name is required");
        await Post($"{Hub}/orchestrations/{id}/events", new { name = "approve", input = "Ada" }, HttpStatusCode.Accepted);
        var done = await fx.CompleteAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal("\"approved by Ada\"", done.SerializedOutput);

        var id2 = p + "t";
        await Schedule(Orchestrations.WaitForApproval, null, id2);
        await fx.StartedAsync(id2);
        await Post($"{Hub}/orchestrations/{id2}/terminate", new { reason = "no longer needed" }, HttpStatusCode.Accepted);
        var terminated = await fx.CompleteAsync(id2);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, terminated.RuntimeStatus);
        Assert.Equal("\"no longer needed\"", terminated.SerializedOutput);

        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}none/terminate", null, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}none/suspend", null, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}none/events", new { name = "x" }, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{id2}/terminate", "[1,2", HttpStatusCode.BadRequest, "not valid JSON");
    }

    [Fact]
    public async Task RestartRewindAndPurge()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Greet, "Kyiv", p + "g");
        await fx.CompleteAsync(p + "g");

        // Same id: a new execution of the finished instance.
        var before = (await fx.Client.GetInstanceAsync(p + "g"))!;
        var same = await Post($"{Hub}/orchestrations/{p}g/restart", new { newInstanceId = false });
        Assert.Equal(p + "g", same.GetProperty("instanceId").GetString());
        var again = await fx.CompleteAsync(p + "g");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, again.RuntimeStatus);
        Assert.True(again.CreatedAt > before.CreatedAt);

        var fresh = await Post($"{Hub}/orchestrations/{p}g/restart", new { newInstanceId = true });
        var freshId = fresh.GetProperty("instanceId").GetString()!;
        Assert.NotEqual(p + "g", freshId);
        Assert.Equal("\"Hello, Kyiv! Hello, London!\"", (await fx.CompleteAsync(freshId)).SerializedOutput);

        await Schedule(Orchestrations.WaitForApproval, null, p + "w");
        await fx.StartedAsync(p + "w");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}w/restart", new { newInstanceId = false }, HttpStatusCode.Conflict, "only a completed, failed or terminated");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}w/rewind", null, HttpStatusCode.Conflict, "only a failed instance");
        await Problem(HttpMethod.Delete, $"{Hub}/orchestrations/{p}w", null, HttpStatusCode.Conflict, "can be purged");
        await fx.Client.TerminateInstanceAsync(p + "w");
        await fx.CompleteAsync(p + "w");

        // Rewind: the activity failed once; run again, it succeeds.
        await Schedule(Orchestrations.Flaky, p + "flaky", p + "flaky");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await fx.CompleteAsync(p + "flaky")).RuntimeStatus);
        await Post($"{Hub}/orchestrations/{p}flaky/rewind", new { reason = "fixed" }, HttpStatusCode.Accepted);
        await DashboardFixture.Eventually(async () =>
            (await fx.Client.GetInstanceAsync(p + "flaky"))?.RuntimeStatus == OrchestrationRuntimeStatus.Completed, "the rewound instance completes");

        var purged = await Send(HttpMethod.Delete, $"{Hub}/orchestrations/{p}g", null, HttpStatusCode.OK);
        Assert.Equal(1, purged.GetProperty("deleted").GetInt32());
        Assert.Null(await fx.Client.GetInstanceAsync(p + "g"));
        await Problem(HttpMethod.Delete, $"{Hub}/orchestrations/{p}g", null, HttpStatusCode.NotFound, "not found");
        await Problem(HttpMethod.Post, $"{Hub}/orchestrations/{p}g/restart", null, HttpStatusCode.NotFound, "not found");
    }

    [Fact]
    public async Task PurgeIsRecursiveByDefault()
    {
        var p = NewPrefix();
        await Schedule(Orchestrations.Parent, "Quito", p + "p");
        await fx.CompleteAsync(p + "p");
        Assert.Equal(3, (await Get($"{Hub}/counts?prefix={p}p")).GetProperty("total").GetInt32());
        var purged = await Send(HttpMethod.Delete, $"{Hub}/orchestrations/{p}p", null, HttpStatusCode.OK);
        Assert.Equal(3, purged.GetProperty("deleted").GetInt32());
        // Counts are reused for a moment between reads, but never across a write.
        Assert.Equal(0, (await Get($"{Hub}/counts?prefix={p}p")).GetProperty("total").GetInt32());
        Assert.Null(await fx.Client.GetInstanceAsync(p + "p-child-0"));

        await Schedule(Orchestrations.Parent, "Quito", p + "q");
        await fx.CompleteAsync(p + "q");
        var shallow = await Send(HttpMethod.Delete, $"{Hub}/orchestrations/{p}q?recursive=false", null, HttpStatusCode.OK);
        Assert.Equal(1, shallow.GetProperty("deleted").GetInt32());
        Assert.NotNull(await fx.Client.GetInstanceAsync(p + "q-child-0"));
    }

    [Fact]
    public async Task BulkActionsOverAFilterOrIds()
    {
        var p = NewPrefix();
        for (int i = 0; i < 4; i++) await Schedule(Orchestrations.WaitForApproval, null, $"{p}w{i}");
        for (int i = 0; i < 3; i++) await Schedule(Orchestrations.Greet, "x", $"{p}g{i}");
        for (int i = 0; i < 4; i++) await fx.StartedAsync($"{p}w{i}");
        for (int i = 0; i < 3; i++) await fx.CompleteAsync($"{p}g{i}");

        // Terminate by filter, at most 3 per call.
        var first = await Post($"{Hub}/bulk/terminate", new { filter = new { prefix = p + "w" }, reason = "cleanup", limit = 3 });
        Assert.Equal(3, first.GetProperty("matched").GetInt32());
        Assert.Equal(3, first.GetProperty("succeeded").GetInt32());
        Assert.False(first.GetProperty("complete").GetBoolean());
        var rest = await Post($"{Hub}/bulk/terminate", new { filter = new { prefix = p, statuses = new[] { "Running", "Pending" } }, reason = "cleanup" });
        Assert.True(rest.GetProperty("complete").GetBoolean());
        for (int i = 0; i < 4; i++)
        {
            var m = await fx.CompleteAsync($"{p}w{i}");
            Assert.Equal(OrchestrationRuntimeStatus.Terminated, m.RuntimeStatus);
            Assert.Equal("\"cleanup\"", m.SerializedOutput);
        }

        // Finished instances are skipped by terminate.
        var skipped = await Post($"{Hub}/bulk/terminate", new { instanceIds = new[] { $"{p}g0", $"{p}g1" } });
        Assert.Equal(2, skipped.GetProperty("skipped").GetInt32());
        Assert.Equal(0, skipped.GetProperty("succeeded").GetInt32());

        // Restart the completed ones under new ids: the new instances are not restarted again.
        var restarted = await Post($"{Hub}/bulk/restart", new { filter = new { prefix = p + "g", name = "Greet" }, newInstanceId = true });
        Assert.Equal(3, restarted.GetProperty("succeeded").GetInt32());
        var newIds = restarted.GetProperty("newInstanceIds").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(3, newIds.Distinct().Count());
        foreach (var id in newIds) Assert.Equal(OrchestrationRuntimeStatus.Completed, (await fx.CompleteAsync(id)).RuntimeStatus);
        var sameIds = await Post($"{Hub}/bulk/restart", new { instanceIds = new[] { $"{p}g0" } });
        Assert.Equal(1, sameIds.GetProperty("succeeded").GetInt32());
        await fx.CompleteAsync($"{p}g0");

        // Purge by filter: only what matches.
        var purged = await Post($"{Hub}/bulk/purge", new { filter = new { prefix = p + "w", statuses = new[] { "Terminated" } } });
        Assert.Equal(4, purged.GetProperty("deleted").GetInt32());
        Assert.True(purged.GetProperty("complete").GetBoolean());
        Assert.Null(await fx.Client.GetInstanceAsync($"{p}w0"));
        Assert.NotNull(await fx.Client.GetInstanceAsync($"{p}g0"));
        var byIds = await Post($"{Hub}/bulk/purge", new { instanceIds = new[] { $"{p}g0", $"{p}g1", $"{p}nothing" } });
        Assert.Equal(2, byIds.GetProperty("deleted").GetInt32());

        await Problem(HttpMethod.Post, $"{Hub}/bulk/terminate", new { filter = new { prefix = p }, limit = 0 }, HttpStatusCode.BadRequest, "limit");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/terminate", new { filter = new { prefix = p }, limit = 10_001 }, HttpStatusCode.BadRequest, "limit");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/purge", new { filter = new { statuses = new[] { "Done" } } }, HttpStatusCode.BadRequest, "not a status");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/restart", "{\"instanceIds\": 5}", HttpStatusCode.BadRequest, "not valid JSON");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/purge", new { instanceIds = Enumerable.Range(0, 1001).Select(i => $"x{i}") }, HttpStatusCode.BadRequest, "limit is 1000");
    }

    [Fact]
    public async Task ListCountsAndBulkActionsFilterByVersion()
    {
        var p = NewPrefix();
        foreach (var (id, version) in new[] { ("v1", "1.0"), ("v2a", "2.0"), ("v2b", "2.0"), ("none", null) })
            await Post($"{Hub}/orchestrations", new { name = Orchestrations.Greet, instanceId = p + id, version, input = "Oslo" }, HttpStatusCode.Created);
        foreach (var id in new[] { "v1", "v2a", "v2b", "none" }) await fx.CompleteAsync(p + id);

        async Task<List<string>> List(string query) => Ids(await Get($"{Hub}/orchestrations?prefix={p}&{query}"));

        Assert.Equal([p + "v1"], await List("version=1.0"));
        Assert.Equal([p + "v2a", p + "v2b"], await List("version=2.0&name=greet"));
        Assert.Empty(await List("version=3.0"));
        Assert.Equal("2.0", (await Get($"{Hub}/orchestrations?prefix={p}v2a")).GetProperty("items")[0].GetProperty("version").GetString());
        var counts = await Get($"{Hub}/counts?prefix={p}&version=2.0");
        Assert.Equal(2, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("counts").GetProperty("Completed").GetInt32());
        Assert.Equal(1, (await Get($"{Hub}?prefix={p}&version=1.0")).GetProperty("counts").GetProperty("total").GetInt32());

        var purged = await Post($"{Hub}/bulk/purge", new { filter = new { prefix = p, version = "2.0" } });
        Assert.Equal(2, purged.GetProperty("deleted").GetInt32());
        Assert.Equal([p + "none", p + "v1"], await List(""));
    }

    [Fact]
    public async Task BulkSuspendResumeRaiseEventAndRewind()
    {
        var p = NewPrefix();
        for (int i = 0; i < 3; i++) await Schedule(Orchestrations.WaitForApproval, null, $"{p}w{i}");
        await Schedule(Orchestrations.Flaky, p + "flaky", p + "f0");
        await Schedule(Orchestrations.Greet, "x", p + "g0");
        for (int i = 0; i < 3; i++) await fx.StartedAsync($"{p}w{i}");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await fx.CompleteAsync(p + "f0")).RuntimeStatus);
        await fx.CompleteAsync(p + "g0");

        async Task Statuses(string prefix, OrchestrationRuntimeStatus status) => await DashboardFixture.Eventually(async () =>
        {
            for (int i = 0; i < 3; i++)
                if ((await fx.Client.GetInstanceAsync($"{prefix}w{i}"))?.RuntimeStatus != status) return false;
            return true;
        }, $"the waiting instances are {status}");

        // Suspend over a filter: the finished ones (failed, completed) are skipped.
        var suspended = await Post($"{Hub}/bulk/suspend", new { filter = new { prefix = p }, reason = "maintenance" });
        Assert.Equal(5, suspended.GetProperty("matched").GetInt32());
        Assert.Equal(3, suspended.GetProperty("succeeded").GetInt32());
        Assert.Equal(2, suspended.GetProperty("skipped").GetInt32());
        Assert.Empty(suspended.GetProperty("failures").EnumerateArray());
        await Statuses(p, OrchestrationRuntimeStatus.Suspended);
        var again = await Post($"{Hub}/bulk/suspend", new { instanceIds = new[] { p + "w0" } });
        Assert.Equal(1, again.GetProperty("skipped").GetInt32());

        // Resume takes only the suspended ones.
        var resumed = await Post($"{Hub}/bulk/resume", new { filter = new { prefix = p } });
        Assert.Equal(3, resumed.GetProperty("succeeded").GetInt32());
        Assert.Equal(2, resumed.GetProperty("skipped").GetInt32());
        await Statuses(p, OrchestrationRuntimeStatus.Running);

        // One event to each selected instance.
        var raised = await Post($"{Hub}/bulk/events", new { instanceIds = new[] { p + "w0", p + "w1", p + "w2", p + "g0" }, eventName = "approve", eventInput = "Ada" });
        Assert.Equal(3, raised.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, raised.GetProperty("skipped").GetInt32());
        for (int i = 0; i < 3; i++) Assert.Equal("\"approved by Ada\"", (await fx.CompleteAsync($"{p}w{i}")).SerializedOutput);

        // Rewind applies to failed instances only: the others are reported as failed, with the reason.
        var rewound = await Post($"{Hub}/bulk/rewind", new { instanceIds = new[] { p + "f0", p + "g0" }, reason = "fixed" });
        Assert.Equal(2, rewound.GetProperty("matched").GetInt32());
        Assert.Equal(1, rewound.GetProperty("succeeded").GetInt32());
        var failure = Assert.Single(rewound.GetProperty("failures").EnumerateArray());
        Assert.Equal(p + "g0", failure.GetProperty("instanceId").GetString());
        Assert.Contains("only a failed instance can be rewound", failure.GetProperty("error").GetString());
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(p + "f0"))?.RuntimeStatus == OrchestrationRuntimeStatus.Completed, "the rewound instance completed");

        await Problem(HttpMethod.Post, $"{Hub}/bulk/events", new { filter = new { prefix = p } }, HttpStatusCode.BadRequest, "eventName is required");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/suspend", new { filter = new { prefix = p }, limit = 0 }, HttpStatusCode.BadRequest, "limit");
        await Problem(HttpMethod.Post, $"{Hub}/bulk/rewind", new { instanceIds = new[] { "" } }, HttpStatusCode.BadRequest, "instanceIds");
    }

    [Fact]
    public async Task InstanceIdsWithReservedCharacters()
    {
        var p = NewPrefix();
        foreach (var id in new[] { p + "a/b", p + "50%25 off", p + "x?y#z" })
        {
            await Schedule(Orchestrations.Greet, "z", id);
            await fx.CompleteAsync(id);
            var detail = await Get($"{Hub}/orchestrations/{Uri.EscapeDataString(id)}");
            Assert.Equal(id, detail.GetProperty("instanceId").GetString());
            Assert.NotEmpty((await Get($"{Hub}/orchestrations/{Uri.EscapeDataString(id)}/history")).EnumerateArray());
            Assert.Equal(1, (await Send(HttpMethod.Delete, $"{Hub}/orchestrations/{Uri.EscapeDataString(id)}", null, HttpStatusCode.OK)).GetProperty("deleted").GetInt32());
        }
    }

    [Fact]
    public async Task EntitiesListSignalLockAndDelete()
    {
        var key = NewPrefix().TrimEnd('-');
        var id = $"@counter@{key}";
        var escaped = Uri.EscapeDataString(id);

        await Problem(HttpMethod.Get, $"{Hub}/entities/{escaped}", null, HttpStatusCode.NotFound, "not found");
        await Post($"{Hub}/entities/{escaped}/signal", new { operation = "Add", input = 5 }, HttpStatusCode.Accepted);
        await Post($"{Hub}/entities/{Uri.EscapeDataString($"@Counter@{key}")}/signal", new { operation = "add", input = 2 }, HttpStatusCode.Accepted);
        await DashboardFixture.Eventually(async () =>
            (await fx.Client.Entities.GetEntityAsync(new Microsoft.DurableTask.Entities.EntityInstanceId("Counter", key)))?.State.ReadAs<int>() == 7,
            "the counter reaches 7");

        var entity = await Get($"{Hub}/entities/{escaped}");
        Assert.Equal(id, entity.GetProperty("entityId").GetString());
        Assert.Equal("counter", entity.GetProperty("name").GetString());
        Assert.Equal(key, entity.GetProperty("key").GetString());
        Assert.Equal("7", entity.GetProperty("state").GetProperty("value").GetString());
        Assert.False(entity.TryGetProperty("lockedBy", out _));
        Assert.Equal(0, entity.GetProperty("backlogQueueSize").GetInt32());
        using (var state = await Http.GetAsync($"{Hub}/entities/{escaped}/state"))
        {
            Assert.Equal("7", await state.Content.ReadAsStringAsync());
        }

        // Listed by name or by id prefix (names are case-insensitive).
        foreach (var prefix in new[] { $"Counter@{key}", $"@counter@{key[..4]}" })
        {
            var page = await Get($"{Hub}/entities?prefix={Uri.EscapeDataString(prefix)}");
            Assert.Contains(id, page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("entityId").GetString()));
        }

        Assert.Empty((await Get($"{Hub}/entities?prefix=nosuchentity")).GetProperty("items").EnumerateArray());

        // An orchestration holds the lock; signals queue behind it.
        var holder = $"{key}-holder";
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.LockAndWait, key, new StartOrchestrationOptions(holder));
        await DashboardFixture.Eventually(async () =>
            (await Get($"{Hub}/entities/{escaped}")).TryGetProperty("lockedBy", out var by) && by.GetString() == holder, "the orchestration holds the lock");
        await Post($"{Hub}/entities/{escaped}/signal", new { operation = "Add", input = 1 }, HttpStatusCode.Accepted);
        await DashboardFixture.Eventually(async () =>
            (await Get($"{Hub}/entities/{escaped}")).GetProperty("backlogQueueSize").GetInt32() == 1, "the signal waits behind the lock");
        await fx.Client.RaiseEventAsync(holder, "release", "now");
        await fx.CompleteAsync(holder);
        await DashboardFixture.Eventually(async () =>
            (await Get($"{Hub}/entities/{escaped}")).GetProperty("state").GetProperty("value").GetString() == "8", "the queued signal runs");

        var deleted = await Send(HttpMethod.Delete, $"{Hub}/entities/{escaped}", null, HttpStatusCode.OK);
        Assert.Equal(1, deleted.GetProperty("deleted").GetInt32());
        Assert.Null(await fx.Client.Entities.GetEntityAsync(new Microsoft.DurableTask.Entities.EntityInstanceId("Counter", key)));
        await Problem(HttpMethod.Delete, $"{Hub}/entities/{escaped}", null, HttpStatusCode.NotFound, "no state");

        await Problem(HttpMethod.Get, $"{Hub}/entities?pageSize=5000", null, HttpStatusCode.BadRequest, "pageSize");
        await Problem(HttpMethod.Get, $"{Hub}/entities/counter", null, HttpStatusCode.BadRequest, "not an entity id");
        await Problem(HttpMethod.Post, $"{Hub}/entities/{escaped}/signal", new { input = 1 }, HttpStatusCode.BadRequest, "operation is required");
        await Problem(HttpMethod.Post, $"{Hub}/entities/{escaped}/signal", new { operation = "Add", input = new string('x', 70_000) }, HttpStatusCode.BadRequest, "maximum payload size");
        await Problem(HttpMethod.Get, "api/v1/taskhubs/nope/entities", null, HttpStatusCode.NotFound, "nope");
    }
}
