using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using DurableTask.Scheduler.Hosting;
using DurableTask.Scheduler.Security;
using Microsoft.AspNetCore.Routing;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>The JSON API under authentication: every endpoint declares a permission, and the roles apply as they do to gRPC.</summary>
[Collection(AuthCollection.Name)]
public sealed class ApiPermissionTests(AuthSchedulerFixture fixture)
{
    [Fact]
    public void Every_api_endpoint_declares_a_permission()
    {
        var app = SchedulerHost.Build(["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0"]);
        try
        {
            var endpoints = ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
                .Where(e => e.RoutePattern.RawText?.StartsWith("/api/", StringComparison.OrdinalIgnoreCase) == true).ToList();
            Assert.NotEmpty(endpoints);
            var missing = endpoints.Where(e => EndpointPermissionExtensions.PermissionsOf(e).Count == 0)
                .Select(e => $"{string.Join(",", e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? [])} {e.RoutePattern.RawText}").ToList();
            Assert.True(missing.Count == 0, "API endpoints without RequirePermission (they answer 403 when authentication is on):\n" + string.Join("\n", missing));

            // Changing endpoints need more than Read.
            var weakWrites = endpoints.Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods.Any(m => m is "POST" or "PUT" or "PATCH" or "DELETE") == true
                    && EndpointPermissionExtensions.PermissionsOf(e) is { Count: > 0 } p && p[^1].Permission == Permission.Read)
                .Select(e => e.RoutePattern.RawText).ToList();
            Assert.True(weakWrites.Count == 0, "Changing API endpoints that require only Read: " + string.Join(", ", weakWrites));
        }
        finally
        {
            ((IDisposable)app).Dispose();
        }
    }

    async Task<HttpResponseMessage> Send(HttpMethod method, string path, Credential? credential, object? body = null)
    {
        using var http = fixture.Host.CreateHttpClient();
        var request = new HttpRequestMessage(method, path);
        foreach (var header in credential?.Headers ?? []) request.Headers.TryAddWithoutValidation(header.Key, header.Value);
        if (body is not null) request.Content = JsonContent.Create(body);
        return await http.SendAsync(request);
    }

    [Fact]
    public async Task The_api_applies_roles_per_task_hub()
    {
        var reader = Credential.ApiKey("reader:a", TestApiKeys.ReaderOfAKey);
        var workerOfA = Credential.Bearer("worker:a", TestTokens.Token("api-worker", ["worker:a"]));
        var contributor = Credential.ApiKey("contributor", TestApiKeys.ContributorKey);

        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(HttpMethod.Get, "/api/v1/taskhubs", null)).StatusCode);
        using (var hubs = await Send(HttpMethod.Get, "/api/v1/taskhubs", reader))
        {
            Assert.Equal(HttpStatusCode.OK, hubs.StatusCode);
            var names = JsonDocument.Parse(await hubs.Content.ReadAsStringAsync()).RootElement.EnumerateArray().Select(h => h.GetProperty("name").GetString()).ToList();
            Assert.Equal(["a"], names);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(HttpMethod.Get, "/api/v1/scaleout", null)).StatusCode);
        using (var scaleOut = await Send(HttpMethod.Get, "/api/v1/scaleout", reader))
        {
            Assert.Equal(HttpStatusCode.OK, scaleOut.StatusCode);
            Assert.False(JsonDocument.Parse(await scaleOut.Content.ReadAsStringAsync()).RootElement.GetProperty("enabled").GetBoolean());
        }

        using (var info = await Send(HttpMethod.Get, "/api/v1/", contributor))
        {
            var root = JsonDocument.Parse(await info.Content.ReadAsStringAsync()).RootElement;
            Assert.True(root.GetProperty("authenticationEnabled").GetBoolean());
        }

        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, "/api/v1/taskhubs/a/orchestrations", reader)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Get, "/api/v1/taskhubs/b/orchestrations", reader)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Get, "/api/v1/taskhubs/nosuch/orchestrations", reader)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Post, "/api/v1/taskhubs/a/orchestrations", reader, new { name = "Greet" })).StatusCode);
        foreach (var bulk in new[] { "suspend", "resume", "rewind", "events" })
            Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Post, $"/api/v1/taskhubs/a/bulk/{bulk}", reader, new { instanceIds = new[] { "x" }, eventName = "e" })).StatusCode);

        string id = "api-" + Guid.NewGuid().ToString("N")[..8];
        using (var started = await Send(HttpMethod.Post, "/api/v1/taskhubs/a/orchestrations", workerOfA, new { name = "WaitForApproval", instanceId = id }))
            Assert.True(started.IsSuccessStatusCode, $"{started.StatusCode}: {await started.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Post, "/api/v1/taskhubs/b/orchestrations", workerOfA, new { name = "Greet" })).StatusCode);
        using (var terminated = await Send(HttpMethod.Post, $"/api/v1/taskhubs/a/orchestrations/{id}/terminate", workerOfA, new { }))
            Assert.True(terminated.IsSuccessStatusCode, $"{terminated.StatusCode}: {await terminated.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Delete, $"/api/v1/taskhubs/a/orchestrations/{id}", workerOfA)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Send(HttpMethod.Post, "/api/v1/taskhubs/a/bulk/purge", workerOfA, new { instanceIds = new[] { id } })).StatusCode);

        await Tests.Infrastructure.Waits.UntilAsync(async () => (await Send(HttpMethod.Delete, $"/api/v1/taskhubs/a/orchestrations/{id}", contributor)).StatusCode,
            s => s == HttpStatusCode.OK, "the purge by a contributor");
        var audit = fixture.Host.Logs.Category(AuditLog.Category).Select(e => e.Message).ToList();
        Assert.Contains(audit, l => l.Contains("api-worker") && l.Contains("/terminate") && l.Contains($"id='{id}'"));
        Assert.Contains(audit, l => l.Contains("apikey:ops") && l.StartsWith("apikey:ops") && l.Contains("DELETE /api/v1/taskhubs/{hub}/orchestrations/{id}/"));
    }
}
