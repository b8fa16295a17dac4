using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Protocol;

/// <summary>
/// Request fields of the 1.28 protocol that change what the scheduler does, each with the real SDK where it sends the
/// field and with raw protocol calls where no SDK does. <see cref="ProtocolFieldCoverageTests"/> names these tests.
/// </summary>
public sealed class ProtocolFieldTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    static CancellationToken Timeout() => new CancellationTokenSource(Waits.Default).Token;

    static void Failing(DurableTaskRegistry r) => r
        .AddOrchestratorFunc<string, string>("Fails", (_, input) => Task.FromException<string>(new InvalidOperationException("broken: " + input)));

    [Fact]
    public async Task ReadsWithoutPayloads_LeaveOutTheFailureDetails_AndKeepTheStatus()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), Failing, output);
        string prefix = "failing-" + Guid.NewGuid().ToString("N")[..8];
        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Fails", "x", new StartOrchestrationOptions($"{prefix}-1"));

        var waited = await app.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: false, Timeout());
        Assert.Equal(OrchestrationRuntimeStatus.Failed, waited.RuntimeStatus);
        Assert.Null(waited.FailureDetails);

        var bare = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: false);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, bare!.RuntimeStatus);
        Assert.Null(bare.FailureDetails);
        Assert.Null(bare.SerializedInput);

        var full = await app.Client.GetInstanceAsync(id, getInputsAndOutputs: true);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, full!.RuntimeStatus);
        Assert.Contains("broken: x", full.FailureDetails!.ErrorMessage);
        Assert.Equal("\"x\"", full.SerializedInput);

        var started = await app.Client.WaitForInstanceStartAsync(id, getInputsAndOutputs: false, Timeout());
        Assert.Null(started.FailureDetails);

        // Queries follow the same rule.
        var query = new OrchestrationQuery { InstanceIdPrefix = prefix, FetchInputsAndOutputs = false };
        var listed = Assert.Single(await ListAsync(app.Client, query));
        Assert.Equal(OrchestrationRuntimeStatus.Failed, listed.RuntimeStatus);
        Assert.Null(listed.FailureDetails);
        var fetched = Assert.Single(await ListAsync(app.Client, new OrchestrationQuery { InstanceIdPrefix = prefix, FetchInputsAndOutputs = true }));
        Assert.Contains("broken: x", fetched.FailureDetails!.ErrorMessage);
    }

    static async Task<List<OrchestrationMetadata>> ListAsync(DurableTaskClient client, OrchestrationQuery query)
    {
        var list = new List<OrchestrationMetadata>();
        await foreach (var item in client.GetAllInstancesAsync(query)) list.Add(item);
        return list;
    }

    [Fact]
    public async Task ContinueAsNew_WithANewVersion_StartsTheNextExecutionAtThatVersion()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
            .AddOrchestratorFunc<string, string>("Upgrade", (ctx, seen) =>
            {
                if (seen.Length == 0)
                {
                    ctx.ContinueAsNew(new ContinueAsNewOptions { NewInput = "first at " + ctx.Version, NewVersion = "2.0" });
                    return Task.FromResult("");
                }

                return Task.FromResult($"{seen}, then at {ctx.Version}");
            }), output);

        string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Upgrade", "", new StartOrchestrationOptions { Version = "1.0" });
        var done = await app.Client.CompletedAsync(id);

        Assert.Equal("\"first at 1.0, then at 2.0\"", done.SerializedOutput);
        var state = await scheduler.Raw(app.Hub).GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id });
        Assert.Equal("2.0", state.OrchestrationState.Version);
    }

    [Fact]
    public async Task ContinueAsNew_WithTags_ReplacesTheTags_AndWithoutTagsKeepsThem()
    {
        // No SDK 1.28 API sets tags on continue-as-new; a worker speaking the protocol can.
        string hub = SchedulerFixture.NewHub();
        var raw = scheduler.Raw(hub);
        await using var worker = await RawWorker.ConnectAsync(raw);
        string id = "tagged-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Loop", Tags = { ["team"] = "a" } });

        var first = await worker.NextOrchestratorAsync(id);
        await raw.CompleteOrchestratorTaskAsync(ContinueAsNew(id, first.CompletionToken, ("team", "b"), ("stage", "2")));

        var second = await worker.NextOrchestratorAsync(id);
        var started = Assert.Single(second.OrchestratorRequest.NewEvents, e => e.ExecutionStarted is not null).ExecutionStarted;
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, started.Tags);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, await TagsAsync(raw, id));

        await raw.CompleteOrchestratorTaskAsync(ContinueAsNew(id, second.CompletionToken));
        var third = await worker.NextOrchestratorAsync(id);
        started = Assert.Single(third.OrchestratorRequest.NewEvents, e => e.ExecutionStarted is not null).ExecutionStarted;
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, started.Tags);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, await TagsAsync(raw, id));
    }

    [Fact]
    public async Task ContinueAsNew_WithTagsOverTheLimit_FailsTheOrchestrationNamingTheField()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw);
        string id = "too-many-tags-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Loop" });

        var item = await worker.NextOrchestratorAsync(id);
        var tags = Enumerable.Range(0, 65).Select(i => ($"k{i}", "v")).ToArray();
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await raw.CompleteOrchestratorTaskAsync(ContinueAsNew(id, item.CompletionToken, tags)));

        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("completeOrchestration.tags", refused.Status.Detail);
        var state = (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true })).OrchestrationState;
        Assert.Equal(P.OrchestrationStatus.Failed, state.OrchestrationStatus);
        Assert.Contains("completeOrchestration.tags", state.FailureDetails.ErrorMessage);
    }

    static P.OrchestratorResponse ContinueAsNew(string id, string token, params (string Key, string Value)[] tags)
    {
        var complete = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.ContinuedAsNew, Result = "\"again\"" };
        foreach (var (key, value) in tags) complete.Tags[key] = value;
        return new P.OrchestratorResponse { InstanceId = id, CompletionToken = token, Actions = { new P.OrchestratorAction { Id = 0, CompleteOrchestration = complete } } };
    }

    static async Task<Dictionary<string, string>> TagsAsync(P.TaskHubSidecarService.TaskHubSidecarServiceClient raw, string id) =>
        new((await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id })).OrchestrationState.Tags);

    [Fact]
    public async Task Purge_OfAnOrchestrationWhoseIdLooksLikeAnEntitys_PurgesTheOrchestration()
    {
        // Entities are off in this client, so it sends isOrchestration = true for any id.
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), null, output);
        string id = $"@flow@{Guid.NewGuid():N}";
        await app.Client.ScheduleNewOrchestrationInstanceAsync("Later", null, new StartOrchestrationOptions(id) { StartAt = DateTimeOffset.UtcNow.AddHours(1) });
        await app.Client.TerminateInstanceAsync(id, "not needed");
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, (await app.Client.CompletionAsync(id)).RuntimeStatus);

        var purged = await app.Client.PurgeInstanceAsync(id);

        Assert.Equal(1, purged.PurgedInstanceCount);
        Assert.Null(await app.Client.GetInstanceAsync(id));
    }

    [Fact]
    public async Task SkipGracefulTerminations_EndAStuckInstanceAtOnce_AndNameTheOnesLeftAlone()
    {
        string hub = SchedulerFixture.NewHub();
        var raw = scheduler.Raw(hub);
        await using var worker = await RawWorker.ConnectAsync(raw);
        string stuck = "stuck-" + Guid.NewGuid().ToString("N");
        string done = "done-" + Guid.NewGuid().ToString("N");
        string missing = "missing-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = stuck, Name = "Hangs" });
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = done, Name = "Quick" });

        // The worker takes the stuck instance's episode and never answers; the other one completes.
        var hanging = await worker.NextOrchestratorAsync(stuck);
        var quick = await worker.NextOrchestratorAsync(done);
        await raw.CompleteOrchestratorTaskAsync(Complete(done, quick.CompletionToken, "\"ok\""));
        var waiting = raw.WaitForInstanceCompletionAsync(new P.GetInstanceRequest { InstanceId = stuck, GetInputsAndOutputs = true }).ResponseAsync;

        var response = await raw.SkipGracefulOrchestrationTerminationsAsync(new P.SkipGracefulOrchestrationTerminationsRequest
        {
            InstanceBatch = new P.InstanceBatch { InstanceIds = { stuck, done, missing } },
            Reason = "worker hangs",
        });

        Assert.Equal([done, missing], response.UnterminatedInstanceIds);
        var ended = (await waiting.WaitAsync(Waits.Default)).OrchestrationState;
        Assert.Equal(P.OrchestrationStatus.Terminated, ended.OrchestrationStatus);
        Assert.Equal("worker hangs", ended.Output);

        // The episode the worker finishes late changes nothing.
        await raw.CompleteOrchestratorTaskAsync(Complete(stuck, hanging.CompletionToken, "\"late\""));
        var after = (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = stuck, GetInputsAndOutputs = true })).OrchestrationState;
        Assert.Equal((P.OrchestrationStatus.Terminated, "worker hangs"), (after.OrchestrationStatus, after.Output));
        var history = new List<P.HistoryEvent>();
        using (var stream = raw.StreamInstanceHistory(new P.StreamInstanceHistoryRequest { InstanceId = stuck }))
        {
            while (await stream.ResponseStream.MoveNext(Timeout())) history.AddRange(stream.ResponseStream.Current.Events);
        }

        Assert.Equal(P.HistoryEvent.EventTypeOneofCase.ExecutionCompleted, history[^1].EventTypeCase);
        Assert.Equal("worker hangs", history[^2].ExecutionTerminated.Input);
        Assert.Equal(P.OrchestrationStatus.Completed,
            (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = done })).OrchestrationState.OrchestrationStatus);
    }

    [Fact]
    public async Task SkipGracefulTerminations_RefuseMoreThan500Instances_NamingTheField()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        var batch = new P.InstanceBatch();
        for (int i = 0; i < 501; i++) batch.InstanceIds.Add($"i{i}");

        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.SkipGracefulOrchestrationTerminationsAsync(new P.SkipGracefulOrchestrationTerminationsRequest { InstanceBatch = batch }));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("instanceBatch", refused.Status.Detail);
        var missing = await Assert.ThrowsAsync<RpcException>(async () =>
            await raw.SkipGracefulOrchestrationTerminationsAsync(new P.SkipGracefulOrchestrationTerminationsRequest()));
        Assert.Equal(StatusCode.InvalidArgument, missing.StatusCode);
        Assert.Contains("instanceBatch", missing.Status.Detail);
    }

    [Fact]
    public async Task AbandonedWorkItems_AreHandedOutAgain()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw);
        string id = "abandoned-" + Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Flow" });

        var first = await worker.NextOrchestratorAsync(id);
        await raw.AbandonTaskOrchestratorWorkItemAsync(new P.AbandonOrchestrationTaskRequest { CompletionToken = first.CompletionToken });
        var again = await worker.NextOrchestratorAsync(id);
        Assert.NotEqual(first.CompletionToken, again.CompletionToken);
        Assert.Contains(again.OrchestratorRequest.NewEvents, e => e.ExecutionStarted is not null);

        await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
        {
            InstanceId = id, CompletionToken = again.CompletionToken,
            Actions = { new P.OrchestratorAction { Id = 0, ScheduleTask = new P.ScheduleTaskAction { Name = "Work" } } },
        });
        var activity = await worker.NextActivityAsync(id);
        await raw.AbandonTaskActivityWorkItemAsync(new P.AbandonActivityTaskRequest { CompletionToken = activity.CompletionToken });
        var retried = await worker.NextActivityAsync(id);
        Assert.Equal(("Work", 0), (retried.ActivityRequest.Name, retried.ActivityRequest.TaskId));
    }

    [Fact]
    public async Task StartInstance_WithAnExecutionId_RunsTheFirstExecutionUnderIt()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await using var worker = await RawWorker.ConnectAsync(raw);
        string id = "given-" + Guid.NewGuid().ToString("N");
        string executionId = Guid.NewGuid().ToString("N");
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Flow", ExecutionId = executionId });

        var item = await worker.NextOrchestratorAsync(id);
        Assert.Equal(executionId, item.OrchestratorRequest.ExecutionId);
        Assert.Equal(executionId, (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id })).OrchestrationState.ExecutionId);
    }

    [Fact]
    public async Task CreateTaskHub_AnswersForTheHub_AndRefusesToRecreateIt()
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        await raw.CreateTaskHubAsync(new P.CreateTaskHubRequest());

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await raw.CreateTaskHubAsync(new P.CreateTaskHubRequest { RecreateIfExists = true }));
        Assert.Equal(StatusCode.Unimplemented, refused.StatusCode);
        Assert.Contains("recreateIfExists", refused.Status.Detail);
    }

    static P.OrchestratorResponse Complete(string id, string token, string result) => new()
    {
        InstanceId = id,
        CompletionToken = token,
        Actions =
        {
            new P.OrchestratorAction
            {
                Id = 0, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = result },
            },
        },
    };
}
