using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using DurableTask.Scheduler.Hosting;
using Microsoft.AspNetCore.Builder;

namespace SampleFunctionApp.Tests;

/// <summary>
/// A real scheduler and the real sample app, both in this process on free loopback ports, talking gRPC and HTTP
/// over sockets. The scheduler serves only the task hub <see cref="TaskHub"/>, so every call that reached it without
/// the sample's <c>taskhub</c> header would fail, and it requires an API key (contributor on that hub), so every call
/// without the sample's <c>Scheduler:ApiKey</c> would be refused.
/// </summary>
public sealed class SamplesFixture : IAsyncLifetime
{
    public const string TaskHub = "samples";

    /// <summary>A key made for this run; the scheduler only knows its SHA-256 hash.</summary>
    public static readonly string ApiKey = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    static string ApiKeyHash => "sha256:" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(ApiKey))).ToLowerInvariant();

    WebApplication? _scheduler;
    WebApplication? _samples;

    public string SchedulerAddress { get; private set; } = "";
    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        int grpc = FreePort(), http = FreePort(), samples = FreePort();

        _scheduler = SchedulerHost.Build(
        [
            $"--Scheduler:GrpcPort={grpc}", $"--Scheduler:HttpPort={http}", $"--DTS_TASK_HUB_NAMES={TaskHub}",
            "--Logging:LogLevel:Default=Warning", "--Scheduler:Store=memory",
            "--Scheduler:Authentication:Mode=ApiKey",
            "--Scheduler:Authentication:ApiKeys:0:Name=samples",
            $"--Scheduler:Authentication:ApiKeys:0:Hash={ApiKeyHash}",
            $"--Scheduler:Authentication:ApiKeys:0:Roles:0=contributor:{TaskHub}",
        ]);
        await _scheduler.StartAsync();
        SchedulerAddress = $"http://localhost:{grpc}";

        _samples = SampleApp.Build(
        [
            $"--urls=http://127.0.0.1:{samples}", $"--Scheduler:Address={SchedulerAddress}", $"--Scheduler:TaskHub={TaskHub}",
            $"--Scheduler:ApiKey={ApiKey}",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _samples.StartAsync();

        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{samples}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (_samples is not null) await _samples.DisposeAsync();
        if (_scheduler is not null) await _scheduler.DisposeAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class SamplesCollection : ICollectionFixture<SamplesFixture>
{
    public const string Name = "samples";
}

/// <summary>What a start request answers (the Durable Functions HTTP management payload).</summary>
public sealed record StartResponse(
    string Id, string StatusQueryGetUri, string SendEventPostUri, string TerminatePostUri,
    string SuspendPostUri, string ResumePostUri, string PurgeHistoryDeleteUri);

/// <summary>Drives the sample app's HTTP API the way a user with curl would.</summary>
public static class SampleApi
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static async Task<StartResponse> StartAsync(this HttpClient http, string orchestration, object? input = null, string? instanceId = null)
    {
        var uri = $"/api/orchestrators/{orchestration}" + (instanceId is null ? "" : $"?instanceId={Uri.EscapeDataString(instanceId)}");
        using var response = input is null ? await http.PostAsync(uri, null) : await http.PostAsJsonAsync(uri, input, Json);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var started = await response.Content.ReadFromJsonAsync<StartResponse>(Json);
        Assert.NotNull(started);
        Assert.Equal(started.StatusQueryGetUri, response.Headers.Location?.ToString());
        return started;
    }

    public static async Task<(HttpStatusCode Code, JsonObject? Body)> GetStatusAsync(this HttpClient http, string statusUri)
    {
        using var response = await http.GetAsync(statusUri);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text) as JsonObject);
    }

    /// <summary>Polls the status URI until it answers 200 (finished) and returns the final status.</summary>
    public static Task<JsonObject> WaitForFinishAsync(this HttpClient http, StartResponse started, TimeSpan? timeout = null)
        => http.WaitForStatusAsync(started, (code, _) => code == HttpStatusCode.OK, timeout);

    /// <summary>Polls the status URI until <paramref name="done"/> holds; fails on anything but 200/202.</summary>
    public static async Task<JsonObject> WaitForStatusAsync(this HttpClient http, StartResponse started,
        Func<HttpStatusCode, JsonObject, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            var (code, body) = await http.GetStatusAsync(started.StatusQueryGetUri);
            Assert.True(code is HttpStatusCode.OK or HttpStatusCode.Accepted, $"status query answered {(int)code}: {body}");
            last = body!;
            if (done(code, last))
            {
                return last;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"Orchestration {started.Id} did not reach the expected state; last status: {last?.ToJsonString()}");
    }

    public static string? RuntimeStatus(this JsonObject status) => status["runtimeStatus"]?.GetValue<string>();
}
