using System.Net;
using System.Net.Http.Json;
using System.Text;

namespace SampleFunctionApp.Tests;

/// <summary>The management API's answers outside the happy path.</summary>
[Collection(SamplesCollection.Name)]
public sealed class HttpApiTests(SamplesFixture fixture)
{
    readonly HttpClient _http = fixture.Http;

    [Fact]
    public async Task UnknownInstance_Is404Everywhere()
    {
        var id = $"missing-{Guid.NewGuid():N}";

        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"/api/instances/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsJsonAsync($"/api/instances/{id}/raiseEvent/Any", 1)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.PostAsync($"/api/instances/{id}/terminate", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.DeleteAsync($"/api/instances/{id}")).StatusCode);
    }

    [Fact]
    public async Task StartingARunningInstanceIdAgain_Is409()
    {
        var id = $"approval-{Guid.NewGuid():N}";
        var started = await _http.StartAsync("ApprovalWorkflow", new { item = "chair", timeoutSeconds = 120 }, id);

        using var again = await _http.PostAsJsonAsync($"/api/orchestrators/ApprovalWorkflow?instanceId={id}", new { item = "chair" });
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);

        // A running instance cannot be purged either.
        Assert.Equal(HttpStatusCode.Conflict, (await _http.DeleteAsync(started.PurgeHistoryDeleteUri)).StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync(started.TerminatePostUri.Replace("{text}", "done"), null)).StatusCode);
        Assert.Equal("Terminated", (await _http.WaitForFinishAsync(started)).RuntimeStatus());
        Assert.Equal(HttpStatusCode.Gone, (await _http.PostAsync(started.TerminatePostUri.Replace("{text}", "again"), null)).StatusCode);
    }

    [Fact]
    public async Task SuspendedInstance_WaitsUntilResumed()
    {
        var started = await _http.StartAsync("ApprovalWorkflow", new { item = "monitor", timeoutSeconds = 120 });
        await _http.WaitForStatusAsync(started, (_, s) => s["customStatus"]?.GetValue<string>() == "Awaiting approval");

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync(started.SuspendPostUri.Replace("{text}", "hold"), null)).StatusCode);
        await _http.WaitForStatusAsync(started, (_, s) => s.RuntimeStatus() == "Suspended");

        // Events sent while suspended are kept and delivered after the resume.
        await _http.PostAsJsonAsync(started.SendEventPostUri.Replace("{eventName}", "ApprovalDecision"), new { approved = true, approver = "dana" });
        await Task.Delay(300);
        Assert.Equal("Suspended", (await _http.GetStatusAsync(started.StatusQueryGetUri)).Body!.RuntimeStatus());

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync(started.ResumePostUri.Replace("{text}", "go"), null)).StatusCode);
        var status = await _http.WaitForFinishAsync(started);
        Assert.Equal("Approved", status["output"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task InvalidJsonBody_Is400()
    {
        using var response = await _http.PostAsync("/api/orchestrators/HelloCities",
            new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task UnknownOrchestrationName_StaysPendingUntilTerminated()
    {
        // Nobody on the task hub announced this name, so the instance stays pending: the scheduler only hands work to
        // a worker that registered it.
        var started = await _http.StartAsync("NoSuchOrchestration");
        await Task.Delay(500);
        var (code, body) = await _http.GetStatusAsync(started.StatusQueryGetUri);
        Assert.Equal(HttpStatusCode.Accepted, code);
        Assert.Equal("Pending", body!.RuntimeStatus());

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync(started.TerminatePostUri.Replace("{text}", "unknown"), null)).StatusCode);
        Assert.Equal("Terminated", (await _http.WaitForFinishAsync(started)).RuntimeStatus());
    }

    [Fact]
    public async Task EntitySignalWithoutOperation_Is400()
    {
        using var response = await _http.PostAsJsonAsync("/api/entities/counter/x", 1);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}
