using System.Net;
using System.Text.Json.Nodes;

namespace SampleFunctionApp.Tests;

/// <summary>The sample app without a scheduler: it starts anyway and says what is wrong.</summary>
public sealed class UnreachableSchedulerTests
{
    [Fact]
    public async Task ApiCalls_Answer503WithTheSchedulersStatus()
    {
        int port = SamplesFixture.FreePort(), nobody = SamplesFixture.FreePort();
        await using var app = SampleApp.Build(
            [$"--urls=http://127.0.0.1:{port}", $"--Scheduler:Address=http://localhost:{nobody}", "--Logging:LogLevel:Default=None"]);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        using var response = await http.GetAsync("/api/instances/anything");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("The scheduler answered Unavailable.", problem["title"]!.GetValue<string>());

        // The app itself is healthy: only the scheduler is missing.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/alive")).StatusCode);
    }
}
