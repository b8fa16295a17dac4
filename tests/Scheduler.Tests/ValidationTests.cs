using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>Requests the scheduler must refuse with a precise status code and message.</summary>
public sealed class ValidationTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    async Task<RpcException> RejectedAsync(StatusCode code, Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        output.WriteLine($"{ex.StatusCode}: {ex.Status.Detail}");
        Assert.Equal(code, ex.StatusCode);
        return ex;
    }

    [Fact]
    public async Task NonExistentInstance_IsNotFoundAndNamed()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        string id = "missing-" + Guid.NewGuid().ToString("N");

        var raise = await RejectedAsync(StatusCode.NotFound, async () =>
            await raw.RaiseEventAsync(new P.RaiseEventRequest { InstanceId = id, Name = "E", Input = "1" }));
        Assert.Contains(id, raise.Status.Detail);
        var terminate = await RejectedAsync(StatusCode.NotFound, async () =>
            await raw.TerminateInstanceAsync(new P.TerminateRequest { InstanceId = id, Output = "\"x\"" }));
        Assert.Contains(id, terminate.Status.Detail);
        var suspend = await RejectedAsync(StatusCode.NotFound, async () =>
            await raw.SuspendInstanceAsync(new P.SuspendRequest { InstanceId = id, Reason = "r" }));
        Assert.Contains(id, suspend.Status.Detail);
        var resume = await RejectedAsync(StatusCode.NotFound, async () =>
            await raw.ResumeInstanceAsync(new P.ResumeRequest { InstanceId = id, Reason = "r" }));
        Assert.Contains(id, resume.Status.Detail);

        var get = await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id });
        Assert.False(get.Exists);
    }

    [Fact]
    public async Task NonExistentInstance_SdkRestartRewindAndHistoryThrowArgumentException()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), tasks: null, output);
        string id = "missing-" + Guid.NewGuid().ToString("N");

        var restart = await Assert.ThrowsAsync<ArgumentException>(() => app.Client.RestartAsync(id, restartWithNewInstanceId: false));
        output.WriteLine(restart.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => app.Client.RewindInstanceAsync(id, "why"));
        await Assert.ThrowsAsync<ArgumentException>(() => app.Client.GetOrchestrationHistoryAsync(id));
    }

    [Fact]
    public async Task MalformedArguments_AreInvalidArgument()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());

        await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "no-name", Name = "" }));
        await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { MaxInstanceCount = -1 } }));
        await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.ListInstanceIdsAsync(new P.ListInstanceIdsRequest { PageSize = -5 }));

        // Nothing was created by the refused start.
        Assert.False((await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "no-name" })).Exists);
    }

    [Fact]
    public async Task InstanceIds_LongerThan100CharsOrWithControlCharacters_AreInvalidArgument()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());

        string longest = new('x', 100);
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = longest, Name = "Any" });
        Assert.True((await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = longest })).Exists, "a 100-character id is accepted");

        var tooLong = await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = new string('y', 101), Name = "Any" }));
        Assert.Contains("100", tooLong.Status.Detail);

        await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "bad\u0001id", Name = "Any" }));
        await RejectedAsync(StatusCode.InvalidArgument, async () =>
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "line\nbreak", Name = "Any" }));

        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), tasks: null, output);
        await Assert.ThrowsAsync<ArgumentException>(() =>
            app.Client.ScheduleNewOrchestrationInstanceAsync("Any", "x", new StartOrchestrationOptions(new string('z', 101))));
    }
}

/// <summary>Payload limits (1,000 bytes in this scheduler).</summary>
public sealed class PayloadLimitTests(SmallPayloadSchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SmallPayloadSchedulerFixture>
{
    const int Limit = SmallPayloadSchedulerFixture.Limit;

    /// <summary>The refusal names the field (<paramref name="field"/>), its size and the limit.</summary>
    async Task AssertTooLargeAsync(string field, int size, Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        output.WriteLine($"{ex.StatusCode}: {ex.Status.Detail}");
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(field, ex.Status.Detail, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(size.ToString(), ex.Status.Detail);
        Assert.Contains(Limit.ToString(), ex.Status.Detail);
    }

    [Fact]
    public async Task StartInput_OverTheLimit_IsRejectedNamingFieldSizeAndLimit()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "at-limit", Name = "Any", Input = new string('a', Limit) });

        await AssertTooLargeAsync("input", 2000, async () =>
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "over-limit", Name = "Any", Input = new string('a', 2000) }));
        Assert.False((await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "over-limit" })).Exists);

        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), tasks: null, output);
        await Assert.ThrowsAsync<ArgumentException>(() => app.Client.ScheduleNewOrchestrationInstanceAsync("Any", new string('b', 5000)));
    }

    [Fact]
    public async Task EventPayloadAndTerminateOutput_OverTheLimit_AreRejected()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        string id = "target-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Any" });

        await AssertTooLargeAsync("event 'E'", 3000, async () =>
            await raw.RaiseEventAsync(new P.RaiseEventRequest { InstanceId = id, Name = "E", Input = new string('e', 3000) }));
        await AssertTooLargeAsync("output", 4000, async () =>
            await raw.TerminateInstanceAsync(new P.TerminateRequest { InstanceId = id, Output = new string('o', 4000) }));
    }

    [Fact]
    public async Task ActivityResultOverTheLimit_FailsTheOrchestrationInsteadOfHanging()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<string, int>("Big", async (ctx, _) => (await ctx.CallActivityAsync<string>("Huge", "")).Length)
            .AddActivityFunc<string, string>("Huge", (_, _) => new string('h', 5000)),
            output);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Big", "");
        var state = await app.Client.CompletionAsync(id, TimeSpan.FromSeconds(30));
        output.WriteLine(Waits.Describe(state));
        Assert.Equal(OrchestrationRuntimeStatus.Failed, state.RuntimeStatus);
    }

    [Fact]
    public async Task OrchestrationOutputOverTheLimit_FailsTheOrchestrationInsteadOfHanging()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<string, string>("BigOutput", (_, _) => Task.FromResult(new string('o', 5000))),
            output);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("BigOutput", "");
        var state = await app.Client.CompletionAsync(id, TimeSpan.FromSeconds(30));
        output.WriteLine(Waits.Describe(state));
        Assert.Equal(OrchestrationRuntimeStatus.Failed, state.RuntimeStatus);
        Assert.Null(state.SerializedOutput);
    }
}

/// <summary>Only the task hubs <c>a</c> and <c>b</c> exist.</summary>
public sealed class TaskHubTests(StaticHubsSchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<StaticHubsSchedulerFixture>
{
    [Fact]
    public async Task UnknownTaskHub_IsNotFound()
    {
        var raw = scheduler.Raw("x");
        foreach (var call in new Func<Task>[]
                 {
                     async () => await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "i" }),
                     async () => await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "i", Name = "n" }),
                     async () => await raw.HelloAsync(new Empty()),
                 })
        {
            var ex = await Assert.ThrowsAsync<RpcException>(call);
            output.WriteLine($"{ex.StatusCode}: {ex.Status.Detail}");
            Assert.Equal(StatusCode.NotFound, ex.StatusCode);
            Assert.Equal("task hub 'x' not found", ex.Status.Detail);
        }

        using var stream = raw.GetWorkItems(new P.GetWorkItemsRequest());
        var streamError = await Assert.ThrowsAsync<RpcException>(async () => await stream.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.NotFound, streamError.StatusCode);
    }

    [Fact]
    public async Task TaskHubs_AreIsolated()
    {
        var a = scheduler.Raw("a");
        var b = scheduler.Raw("b");
        string id = "isolated-" + Guid.NewGuid().ToString("N");
        var later = Timestamp.FromDateTime(DateTime.UtcNow.AddHours(1));

        await a.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "InA", Input = "\"a\"", ScheduledStartTimestamp = later });

        Assert.True((await a.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id })).Exists);
        Assert.False((await b.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id })).Exists);

        var inA = await a.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { InstanceIdPrefix = id, MaxInstanceCount = 10 } });
        var inB = await b.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { InstanceIdPrefix = id, MaxInstanceCount = 10 } });
        Assert.Single(inA.OrchestrationState);
        Assert.Empty(inB.OrchestrationState);

        // The same id can exist independently in the other hub.
        await b.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "InB", Input = "\"b\"", ScheduledStartTimestamp = later });
        var fromA = await a.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true });
        var fromB = await b.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true });
        Assert.Equal(("InA", "\"a\""), (fromA.OrchestrationState.Name, fromA.OrchestrationState.Input));
        Assert.Equal(("InB", "\"b\""), (fromB.OrchestrationState.Name, fromB.OrchestrationState.Input));
    }
}
