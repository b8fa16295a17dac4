using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace SampleFunctionApp.Tests;

/// <summary>Each orchestration pattern end to end: started, followed and answered through the sample's HTTP API.</summary>
[Collection(SamplesCollection.Name)]
public sealed class PatternTests(SamplesFixture fixture)
{
    readonly HttpClient _http = fixture.Http;

    [Fact]
    public async Task FunctionChaining_HelloCities_GreetsEveryCityInOrder()
    {
        var started = await _http.StartAsync("HelloCities");

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.Equal("HelloCities", status["name"]!.GetValue<string>());
        Assert.Equal(started.Id, status["instanceId"]!.GetValue<string>());
        Assert.Equal(
            ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"],
            status["output"]!.AsArray().Select(g => g!.GetValue<string>()));
        var created = status["createdTime"]!.GetValue<DateTimeOffset>();
        var updated = status["lastUpdatedTime"]!.GetValue<DateTimeOffset>();
        Assert.True(created <= updated, $"created {created:o} after last update {updated:o}");
    }

    [Fact]
    public async Task FanOutFanIn_WordCount_SumsTheParallelCounts()
    {
        string[] documents = ["the quick brown fox", "jumps over", "the lazy dog", "", "one"];
        var started = await _http.StartAsync("WordCount", documents);

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.Equal(5, status["output"]!["documents"]!.GetValue<int>());
        Assert.Equal(10, status["output"]!["words"]!.GetValue<int>());
        Assert.Equal(documents.Length, status["input"]!.AsArray().Count);
    }

    [Fact]
    public async Task AsyncHttpApi_LongRunningJob_Reports202WithProgressThen200()
    {
        var started = await _http.StartAsync("LongRunningJob", new { steps = 3, stepSeconds = 0.5 });
        Assert.EndsWith($"/api/instances/{started.Id}", started.StatusQueryGetUri);
        Assert.Equal(started.StatusQueryGetUri, started.PurgeHistoryDeleteUri);
        Assert.Equal($"{started.StatusQueryGetUri}/raiseEvent/{{eventName}}", started.SendEventPostUri);
        Assert.StartsWith($"{started.StatusQueryGetUri}/terminate", started.TerminatePostUri);

        // While it runs: 202, a Location header pointing back at the status, and the progress in customStatus.
        var progress = new List<int>();
        var final = await _http.WaitForStatusAsync(started, (code, status) =>
        {
            if (code == HttpStatusCode.Accepted && status["customStatus"] is JsonObject custom)
            {
                progress.Add(custom["step"]!.GetValue<int>());
            }

            return code == HttpStatusCode.OK;
        });

        Assert.Equal("Completed", final.RuntimeStatus());
        Assert.Equal(3, final["output"]!["steps"]!.GetValue<int>());
        Assert.Equal(100, final["customStatus"]!["percent"]!.GetValue<int>());
        Assert.NotEmpty(progress);
        Assert.All(progress, step => Assert.InRange(step, 1, 3));
        Assert.Equal(progress.Order(), progress);

        // A finished instance keeps answering 200.
        using var again = await _http.GetAsync(started.StatusQueryGetUri);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task Monitor_JobMonitor_StopsWhenTheJobIsDone()
    {
        var started = await _http.StartAsync("JobMonitor",
            new { jobId = "export-1", intervalSeconds = 0.2, maxChecks = 10, completesAfterChecks = 3 });

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.True(status["output"]!["completed"]!.GetValue<bool>());
        Assert.Equal(3, status["output"]!["checks"]!.GetValue<int>());
        // The last execution was started by continue-as-new with the count of checks made before it.
        Assert.Equal(2, status["input"]!["check"]!.GetValue<int>());
        Assert.Equal("Done", status["customStatus"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Monitor_JobMonitor_GivesUpAfterMaxChecks()
    {
        var started = await _http.StartAsync("JobMonitor",
            new { jobId = "export-2", intervalSeconds = 0.1, maxChecks = 4, completesAfterChecks = 0 });

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.False(status["output"]!["completed"]!.GetValue<bool>());
        Assert.Equal(4, status["output"]!["checks"]!.GetValue<int>());
    }

    [Fact]
    public async Task HumanInteraction_Approval_CompletesWithTheApproversAnswer()
    {
        var started = await _http.StartAsync("ApprovalWorkflow", new { item = "laptop", timeoutSeconds = 120 });
        await _http.WaitForStatusAsync(started, (_, s) => s["customStatus"]?.GetValue<string>() == "Awaiting approval");

        using var raised = await _http.PostAsJsonAsync(
            started.SendEventPostUri.Replace("{eventName}", "ApprovalDecision"), new { approved = true, approver = "alice" });
        Assert.Equal(HttpStatusCode.Accepted, raised.StatusCode);

        var status = await _http.WaitForFinishAsync(started);
        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.Equal("Approved", status["output"]!["status"]!.GetValue<string>());
        Assert.Equal("alice", status["output"]!["approver"]!.GetValue<string>());
        Assert.Equal("laptop", status["output"]!["item"]!.GetValue<string>());
    }

    [Fact]
    public async Task HumanInteraction_Approval_CanBeRejected()
    {
        var started = await _http.StartAsync("ApprovalWorkflow", new { item = "yacht", timeoutSeconds = 120 });
        await _http.WaitForStatusAsync(started, (_, s) => s["customStatus"]?.GetValue<string>() == "Awaiting approval");

        using var raised = await _http.PostAsJsonAsync(
            started.SendEventPostUri.Replace("{eventName}", "ApprovalDecision"), new { approved = false, approver = "bob" });
        Assert.Equal(HttpStatusCode.Accepted, raised.StatusCode);

        var status = await _http.WaitForFinishAsync(started);
        Assert.Equal("Rejected", status["output"]!["status"]!.GetValue<string>());
        Assert.Equal("Rejected", status["customStatus"]!.GetValue<string>());
    }

    [Fact]
    public async Task HumanInteraction_Approval_TimesOutAndEscalates()
    {
        var started = await _http.StartAsync("ApprovalWorkflow", new { item = "desk", timeoutSeconds = 1 });

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        Assert.Equal("TimedOut", status["output"]!["status"]!.GetValue<string>());
        Assert.Null(status["output"]!["approver"]);
        Assert.Equal("Timed out", status["customStatus"]!.GetValue<string>());

        // The answer arrives too late: the instance has finished.
        using var late = await _http.PostAsJsonAsync(
            started.SendEventPostUri.Replace("{eventName}", "ApprovalDecision"), new { approved = true, approver = "carol" });
        Assert.Equal(HttpStatusCode.Gone, late.StatusCode);
    }

    [Fact]
    public async Task SubOrchestrations_ProcessOrders_RetriesTheFailedChild()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        var started = await _http.StartAsync("ProcessOrders", new object[]
        {
            new { orderId = $"A-{run}", amount = 20 },
            new { orderId = $"B-{run}", amount = 35, failFirstAttempt = true },
        });

        var status = await _http.WaitForFinishAsync(started);

        Assert.Equal("Completed", status.RuntimeStatus());
        var results = status["output"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.Equal(2, results.Count);
        Assert.Equal($"A-{run}", results[0]["orderId"]!.GetValue<string>());
        Assert.Equal(1, results[0]["paymentAttempt"]!.GetValue<int>());
        Assert.Equal($"B-{run}", results[1]["orderId"]!.GetValue<string>());
        Assert.Equal(2, results[1]["paymentAttempt"]!.GetValue<int>());
        Assert.All(results, r => Assert.Equal("Completed", r["status"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Eternal_PeriodicCleanup_ContinuesAsNewUntilTerminated()
    {
        var instanceId = $"cleanup-{Guid.NewGuid():N}";
        var started = await _http.StartAsync("PeriodicCleanup", new { intervalSeconds = 0.1 }, instanceId);
        Assert.Equal(instanceId, started.Id);

        // Every execution is a new one started by continue-as-new, with the next iteration as its input.
        var running = await _http.WaitForStatusAsync(started, (_, s) => s["input"]?["iteration"]?.GetValue<int>() >= 3);
        Assert.Equal(HttpStatusCode.Accepted, (await _http.GetStatusAsync(started.StatusQueryGetUri)).Code);

        using var terminated = await _http.PostAsync(started.TerminatePostUri.Replace("{text}", "maintenance"), null);
        Assert.Equal(HttpStatusCode.Accepted, terminated.StatusCode);

        var status = await _http.WaitForFinishAsync(started);
        Assert.Equal("Terminated", status.RuntimeStatus());
        Assert.Equal("maintenance", status["output"]!.GetValue<string>());
        Assert.True(running["input"]!["iteration"]!.GetValue<int>() >= 3);

        using var purged = await _http.DeleteAsync(started.PurgeHistoryDeleteUri);
        Assert.Equal(HttpStatusCode.OK, purged.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetStatusAsync(started.StatusQueryGetUri)).Code);
    }
}
