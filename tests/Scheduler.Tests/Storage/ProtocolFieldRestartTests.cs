using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Net.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>What continue-as-new with new tags and version, and an emergency termination, change is still so after a kill.</summary>
public sealed class ProtocolFieldRestartTests(ITestOutputHelper output)
{
    [Fact]
    public async Task NewTagsAndVersion_AndAnEmergencyTermination_SurviveAKill()
    {
        using var data = new TempFolder("fields");
        Directory.CreateDirectory(data.Path);
        await using var scheduler = new SchedulerProcess(output, data.Path, "--Scheduler:Store=sqlite", $"--Scheduler:DataPath={data.Path}");
        await scheduler.StartAsync();

        using (var channel = GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "loop", Name = "Loop", Version = "1", Tags = { ["team"] = "a" } });
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "stuck", Name = "Hangs" });
            await using var worker = await RawWorker.ConnectAsync(raw);
            var item = await worker.NextOrchestratorAsync("loop");
            var next = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.ContinuedAsNew, NewVersion = "2", Tags = { ["team"] = "b" } };
            await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
            {
                InstanceId = "loop", CompletionToken = item.CompletionToken, Actions = { new P.OrchestratorAction { Id = 0, CompleteOrchestration = next } },
            });
            await worker.NextOrchestratorAsync("stuck");
            var skipped = await raw.SkipGracefulOrchestrationTerminationsAsync(new P.SkipGracefulOrchestrationTerminationsRequest
            {
                InstanceBatch = new P.InstanceBatch { InstanceIds = { "stuck" } }, Reason = "stuck",
            });
            Assert.Empty(skipped.UnterminatedInstanceIds);
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();

        using (var channel = GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            var loop = (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "loop" })).OrchestrationState;
            Assert.Equal(("2", "b"), (loop.Version, loop.Tags["team"]));
            var stuck = (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "stuck", GetInputsAndOutputs = true })).OrchestrationState;
            Assert.Equal((P.OrchestrationStatus.Terminated, "stuck"), (stuck.OrchestrationStatus, stuck.Output));

            // The new execution is handed out with its tags; the terminated instance is not handed out again.
            await using var worker = await RawWorker.ConnectAsync(raw);
            var item = await worker.NextAsync(w => w.OrchestratorRequest is not null, "an orchestrator work item");
            Assert.Equal("loop", item.OrchestratorRequest.InstanceId);
            var started = item.OrchestratorRequest.NewEvents.Concat(item.OrchestratorRequest.PastEvents).Single(e => e.ExecutionStarted is not null);
            Assert.Equal(("2", "b"), (started.ExecutionStarted.Version, started.ExecutionStarted.Tags["team"]));
        }
    }
}
