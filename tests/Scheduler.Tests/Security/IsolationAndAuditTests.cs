using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>The real SDK under authentication: a worker scoped to one hub works there and nowhere else; management operations are audited.</summary>
[Collection(AuthCollection.Name)]
public sealed class IsolationAndAuditTests(AuthSchedulerFixture fixture)
{
    GrpcChannel Channel => fixture.Channel;

    static HeadersInterceptor As(string token) => new(new Metadata { { "authorization", "Bearer " + token } });

    [Fact]
    public async Task A_worker_scoped_to_hub_a_runs_orchestrations_there_and_is_refused_on_hub_b()
    {
        var token = TestTokens.Token("svc-orders", ["worker:a"]);
        await using (var app = await SdkApp.StartAsync(Channel, "a", worker: true, As(token)))
        {
            string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Greet", "a");
            var state = await app.Client.CompletedAsync(id);
            Assert.Equal("\"Hello, a!\"", state.SerializedOutput);
        }

        await using var other = await SdkApp.StartAsync(Channel, "b", worker: false, As(token));
        var denied = await Assert.ThrowsAsync<RpcException>(() => other.Client.ScheduleNewOrchestrationInstanceAsync("Greet", "b"));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        denied = await Assert.ThrowsAsync<RpcException>(() => other.Client.GetInstanceAsync("anything"));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        // Work queued on b is not handed to the a-scoped worker's credentials either.
        var raw = new Microsoft.DurableTask.Protobuf.TaskHubSidecarService.TaskHubSidecarServiceClient(
            Channel.Intercept(As(token)).Intercept(new TaskHubInterceptor("b")));
        using var stream = raw.GetWorkItems(new Microsoft.DurableTask.Protobuf.GetWorkItemsRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        var streamDenied = await Assert.ThrowsAsync<RpcException>(() => stream.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.PermissionDenied, streamDenied.StatusCode);
    }

    [Fact]
    public async Task Call_credentials_carry_an_api_key_and_the_task_hub_over_plain_http()
    {
        // As docs/security.md shows for local development with authentication on and no TLS.
        var credentials = CallCredentials.FromInterceptor((_, metadata) =>
        {
            metadata.Add("x-api-key", TestApiKeys.WorkerOfBKey);
            metadata.Add("taskhub", "b");
            return Task.CompletedTask;
        });
        using var channel = GrpcChannel.ForAddress(fixture.Host.GrpcAddress, new GrpcChannelOptions
        {
            Credentials = ChannelCredentials.Create(ChannelCredentials.Insecure, credentials),
            UnsafeUseInsecureChannelCallCredentials = true,
        });
        await using var app = await SdkApp.StartAsync(channel, hub: null, worker: true);
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Greet", "key");
        Assert.Equal("\"Hello, key!\"", (await app.Client.CompletedAsync(id)).SerializedOutput);
    }

    [Fact]
    public async Task A_reader_reads_but_cannot_change_instances()
    {
        await using var writer = await SdkApp.StartAsync(Channel, "a", worker: true, As(TestTokens.Token("svc-writer", ["contributor"])));
        string id = await writer.Client.ScheduleNewOrchestrationInstanceAsync("WaitForApproval");
        await writer.Client.WaitForInstanceStartAsync(id);

        await using var reader = await SdkApp.StartAsync(Channel, "a", worker: false, As(TestTokens.Token("svc-reader", ["reader"])));
        var state = await reader.Client.GetInstanceAsync(id);
        Assert.Equal(OrchestrationRuntimeStatus.Running, state!.RuntimeStatus);
        var denied = await Assert.ThrowsAsync<RpcException>(() => reader.Client.RaiseEventAsync(id, "approval", "yes"));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        denied = await Assert.ThrowsAsync<RpcException>(() => reader.Client.TerminateInstanceAsync(id));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        await writer.Client.RaiseEventAsync(id, "approval", "yes");
        Assert.Equal("\"yes\"", (await writer.Client.CompletedAsync(id)).SerializedOutput);
    }

    [Fact]
    public async Task Management_operations_are_audited_with_principal_hub_and_target()
    {
        var token = TestTokens.Token("oid-1234", ["contributor"], name: "release-pipeline");
        await using var app = await SdkApp.StartAsync(Channel, "b", worker: true, As(token));
        string id = "audit-" + Guid.NewGuid().ToString("N")[..8];
        await app.Client.ScheduleNewOrchestrationInstanceAsync("WaitForApproval", new StartOrchestrationOptions(id));
        await app.Client.WaitForInstanceStartAsync(id);
        await app.Client.SuspendInstanceAsync(id, "maintenance");
        await app.Client.ResumeInstanceAsync(id, "done");
        await app.Client.RaiseEventAsync(id, "unrelated", 1);
        await app.Client.TerminateInstanceAsync(id, "stop");
        await app.Client.CompletionAsync(id);
        await app.Client.PurgeInstanceAsync(id);

        await using var reader = await SdkApp.StartAsync(Channel, "b", worker: false, As(TestTokens.Token("oid-5678", ["reader"])));
        await Assert.ThrowsAsync<RpcException>(() => reader.Client.TerminateInstanceAsync(id));

        var audit = await Waits.UntilAsync(
            () => Task.FromResult(fixture.Host.Logs.Category(AuditLog.Category).Where(e => e.Message.Contains(id) || e.Message.Contains("oid-5678")).ToList()),
            lines => lines.Count >= 6, "six audit lines");
        string Line(string operation) => Assert.Single(audit, e => e.Message.Contains($": {operation} on")).Message;

        foreach (var op in new[] { "SuspendInstance", "ResumeInstance", "RaiseEvent", "TerminateInstance", "PurgeInstances" })
        {
            string line = Line(op);
            Assert.Contains("oid-1234 (release-pipeline)", line);
            Assert.Contains("task hub 'b'", line);
            Assert.Contains($"instance '{id}'", line);
            Assert.EndsWith(op == "PurgeInstances" ? "OK, 1 deleted" : "OK", line);
        }

        Assert.Contains("event 'unrelated'", Line("RaiseEvent"));
        var refused = Assert.Single(audit, e => e.Message.Contains("oid-5678"));
        Assert.Equal(LogLevel.Warning, refused.Level);
        Assert.Contains("refused TerminateInstance on task hub 'b'", refused.Message);
        Assert.Contains("ClientWrite", refused.Message);
    }

    [Fact]
    public async Task Changing_http_api_calls_are_audited()
    {
        using var http = fixture.Host.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/sample/taskhubs/a/orchestrations/http-audit-1/terminate");
        request.Headers.Add("x-api-key", TestApiKeys.ContributorKey);
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var line = await Waits.UntilAsync(
            () => Task.FromResult(fixture.Host.Logs.Category(AuditLog.Category).FirstOrDefault(e => e.Message.Contains("http-audit-1"))),
            e => e is not null, "the audit line of the HTTP call");
        Assert.Contains("apikey:ops", line!.Message);
        Assert.Contains("POST /api/sample/taskhubs/{hub}/orchestrations/{id}/terminate on task hub 'a'", line.Message);
        Assert.Contains("id='http-audit-1'", line.Message);
        Assert.EndsWith("HTTP 202", line.Message);
    }
}
