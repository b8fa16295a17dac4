using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace DurableTask.AppHost.Tests;

/// <summary>
/// The samples as a user meets them in the running topology: orchestrations started through the sample app's HTTP API
/// and followed through its status URI, run by the .NET sample worker or by the JavaScript worker (<c>samples-js</c>).
/// </summary>
[Collection(AppHostCollection.Name)]
public sealed class SamplesTests(AppHostFixture fixture)
{
    const string JavaScriptWorker = "samples-js";

    static readonly string[] Greetings = ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"];

    [Fact]
    public async Task HelloCitiesStartedThroughTheSamplesHttpApiCompletesWithFiveGreetings()
    {
        await fixture.WaitHealthyAsync("samples");
        using var http = fixture.App.CreateHttpClient("samples");

        var status = await RunAsync(http, "HelloCities", TimeSpan.FromSeconds(60));

        Assert.True((string?)status["runtimeStatus"] == "Completed", status.ToJsonString());
        Assert.Equal(Greetings, status["output"]!.AsArray().Select(g => g!.GetValue<string>()));
    }

    [Fact]
    public async Task HelloCitiesJsIsRunByTheJavaScriptWorker()
    {
        // CI installs Node.js: without it the AppHost leaves the worker out, and this test must fail, not pass or skip.
        Assert.True(
            fixture.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Any(r => r.Name == JavaScriptWorker),
            $"The AppHost has no '{JavaScriptWorker}' resource: it did not find 'node' on the PATH. Install Node.js 20 or newer " +
            "(the test machines, CI included, must have it).");
        await fixture.WaitHealthyAsync("samples");
        await WaitWorkerRunningAsync();
        // Its health check: the worker answers GET /health while it runs.
        await fixture.WaitHealthyAsync(JavaScriptWorker);
        using var http = fixture.App.CreateHttpClient("samples");

        JsonObject status;
        try
        {
            status = await RunAsync(http, "HelloCitiesJs", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{JavaScriptWorker} output:\n{await fixture.ConsoleOfAsync(JavaScriptWorker)}", e);
        }

        Assert.True((string?)status["runtimeStatus"] == "Completed", status.ToJsonString());
        Assert.Equal(Greetings, status["output"]!.AsArray().Select(g => g!.GetValue<string>()));
    }

    [Fact]
    public async Task JavaScriptWorkerFindsTheSchedulerThroughServiceDiscovery()
    {
        await WaitWorkerRunningAsync();

        var env = await fixture.EnvironmentOfAsync(JavaScriptWorker);

        Assert.Equal(fixture.App.GetEndpoint("scheduler", "grpc"), new Uri(env["services__scheduler__grpc__0"]));
    }

    /// <summary>Waits for the worker's process to run (after <c>npm ci</c>, when the packages had to be installed).</summary>
    async Task WaitWorkerRunningAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        string[] settled = [KnownResourceStates.Running, KnownResourceStates.Exited, KnownResourceStates.Finished, KnownResourceStates.FailedToStart];
        var state = await fixture.App.ResourceNotifications.WaitForResourceAsync(
            JavaScriptWorker, e => settled.Contains(e.Snapshot.State?.Text), cts.Token);
        if (state.Snapshot.State?.Text != KnownResourceStates.Running)
        {
            Assert.Fail($"{JavaScriptWorker} is {state.Snapshot.State?.Text} (exit code {state.Snapshot.ExitCode}):\n" +
                        $"{await fixture.ConsoleOfAsync($"{JavaScriptWorker}-install")}\n{await fixture.ConsoleOfAsync(JavaScriptWorker)}");
        }
    }

    /// <summary>POST /api/orchestrators/{name}, then GET its statusQueryGetUri until it answers 200 (finished).</summary>
    static async Task<JsonObject> RunAsync(HttpClient http, string orchestration, TimeSpan timeout)
    {
        using var started = await http.PostAsync($"/api/orchestrators/{orchestration}", content: null);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var payload = await started.Content.ReadFromJsonAsync<JsonObject>();
        var statusUri = new Uri((string)payload!["statusQueryGetUri"]!);
        Assert.Equal(started.Headers.Location, statusUri);

        var deadline = DateTime.UtcNow + timeout;
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await http.GetAsync(statusUri);
            last = await response.Content.ReadFromJsonAsync<JsonObject>();
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return last!;
            }

            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            await Task.Delay(250);
        }

        throw new TimeoutException($"{orchestration} did not finish within {timeout}; last status: {last?.ToJsonString() ?? "none"}.");
    }
}
