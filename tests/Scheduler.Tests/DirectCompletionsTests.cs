using DurableTask.Scheduler.Protocol;
using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// With authentication off, plain CompleteOrchestratorTask and CompleteActivityTask calls are answered without the gRPC
/// library's handler (<see cref="DirectCompletions"/>). These check that the SDK's own calls take that path, that its
/// answers and errors are the ones a gRPC client reads from the library, and that every call it does not answer
/// (a deadline, compression, a malformed or oversized message) still gets the library's answer.
/// </summary>
public sealed class DirectCompletionsTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);
    static string Service => P.TaskHubSidecarService.Descriptor.FullName;

    DirectCompletions Direct => scheduler.Services.GetRequiredService<DirectCompletions>();

    async Task<Status> CallAsync(string method, byte[] body, string hub, DateTime? deadline = null, bool gzip = false)
    {
        var headers = new Metadata { { "taskhub", hub } };
        if (gzip) headers.Add("grpc-internal-encoding-request", "gzip");
        var m = new Method<byte[], byte[]>(MethodType.Unary, Service, method, Bytes, Bytes);
        try
        {
            using var call = scheduler.Channel.CreateCallInvoker().AsyncUnaryCall(m, null, new CallOptions(headers, deadline), body);
            var answer = await call.ResponseAsync;
            Assert.Empty(answer); // CompleteTaskResponse has no fields
            return call.GetStatus();
        }
        catch (RpcException ex)
        {
            return ex.Status;
        }
    }

    [Fact]
    public async Task The_sdk_worker_completions_are_answered_directly()
    {
        long before = Direct.Served;
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<int, int>("Sum", async (ctx, n) =>
            {
                int total = 0;
                for (int i = 1; i <= n; i++) total += await ctx.CallActivityAsync<int>("Twice", i);
                return total;
            })
            .AddActivityFunc<int, int>("Twice", (_, i) => 2 * i), output);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Sum", 3);
        var done = await app.Client.CompletedAsync(id);
        Assert.Equal(12, done.ReadOutputAs<int>());
        // 4 orchestrator episodes and 3 activities.
        Assert.True(Direct.Served - before >= 7, $"only {Direct.Served - before} of the 7 completions took the direct path");
    }

    [Fact]
    public async Task A_completion_nobody_waits_for_is_acknowledged()
    {
        string hub = SchedulerFixture.NewHub();
        long before = Direct.Served;
        var activity = new P.ActivityResponse { InstanceId = "gone", TaskId = 1, CompletionToken = "no-such-token", Result = "1" };
        var orchestrator = new P.OrchestratorResponse { InstanceId = "gone", CompletionToken = "no-such-token" };
        Assert.Equal(StatusCode.OK, (await CallAsync("CompleteActivityTask", activity.ToByteArray(), hub)).StatusCode);
        Assert.Equal(StatusCode.OK, (await CallAsync("CompleteOrchestratorTask", orchestrator.ToByteArray(), hub)).StatusCode);
        Assert.Equal(before + 2, Direct.Served);
    }

    [Fact]
    public async Task Errors_are_a_grpc_status_with_the_message_intact()
    {
        long before = Direct.Served;
        var activity = new P.ActivityResponse { InstanceId = "i", CompletionToken = "t" }.ToByteArray();
        // '%' and ' ' are not valid in a task hub name; the message quotes the name, so '%' must survive percent-encoding.
        var status = await CallAsync("CompleteActivityTask", activity, "50% off");
        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.Contains("task hub name '50% off' is invalid", status.Detail);
        Assert.Equal(before + 1, Direct.Served);
    }

    [Fact]
    public void Status_messages_are_percent_encoded_utf8()
    {
        Assert.Equal("plain text: ok", DirectCompletions.PercentEncode("plain text: ok"));
        Assert.Equal("50%25 h%C3%A9%0Aline %E2%9C%93", DirectCompletions.PercentEncode("50% hé\nline ✓"));
    }

    [Fact]
    public async Task Calls_it_does_not_answer_get_the_library_answer()
    {
        string hub = SchedulerFixture.NewHub();
        long before = Direct.Served;
        var activity = new P.ActivityResponse { InstanceId = "gone", TaskId = 1, CompletionToken = "no-such-token", Result = "1" }.ToByteArray();

        // A deadline and a gzip-compressed message are handled by the library, which answers them as usual.
        Assert.Equal(StatusCode.OK, (await CallAsync("CompleteActivityTask", activity, hub, DateTime.UtcNow.AddSeconds(30))).StatusCode);
        Assert.Equal(StatusCode.OK, (await CallAsync("CompleteActivityTask", activity, hub, gzip: true)).StatusCode);

        // Bytes that are not a message: the library's InvalidArgument.
        foreach (var method in new[] { "CompleteActivityTask", "CompleteOrchestratorTask" })
        {
            var status = await CallAsync(method, [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01], hub);
            Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
            Assert.Contains("is not a valid", status.Detail);
        }

        // Above the gRPC message limit (16 MiB): ResourceExhausted, before the message is read.
        var huge = new P.ActivityResponse { InstanceId = "gone", CompletionToken = "t", Result = new string('r', 17 * 1024 * 1024) };
        Assert.Equal(StatusCode.ResourceExhausted, (await CallAsync("CompleteActivityTask", huge.ToByteArray(), hub)).StatusCode);

        Assert.Equal(before, Direct.Served);
    }
}
