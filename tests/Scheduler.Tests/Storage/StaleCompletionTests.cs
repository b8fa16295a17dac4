using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Net.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// A worker that finishes an activity while the scheduler restarts sends its result, with the completion token it was
/// given, to the new scheduler process. That token must not match any work handed out since the restart.
/// </summary>
public sealed class StaleCompletionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task CompletionsForWorkHandedOutBeforeARestart_NeverCompleteOtherWork()
    {
        using var data = new TempFolder("stale");
        Directory.CreateDirectory(data.Path);
        await using var scheduler = new SchedulerProcess(output, data.Path, "--Scheduler:Store=sqlite", $"--Scheduler:DataPath={data.Path}");
        await scheduler.StartAsync();
        string[] ids = ["a", "b", "c", "d"];

        // Each orchestration schedules two activities; all eight are handed out, none is answered.
        var before = new List<(string Id, int TaskId, string Token)>();
        using (var channel = GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            foreach (var id in ids) await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Orch" });
            await using var worker = await RawWorker.ConnectAsync(raw);
            foreach (var id in ids)
            {
                var item = await worker.NextOrchestratorAsync(id);
                await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
                {
                    InstanceId = id,
                    CompletionToken = item.CompletionToken,
                    Actions =
                    {
                        new P.OrchestratorAction { Id = 0, ScheduleTask = new P.ScheduleTaskAction { Name = "Act", Input = $"\"{id}\"" } },
                        new P.OrchestratorAction { Id = 1, ScheduleTask = new P.ScheduleTaskAction { Name = "Act", Input = $"\"{id}\"" } },
                    },
                });
            }

            for (int i = 0; i < ids.Length * 2; i++)
            {
                var item = await worker.NextAsync(w => w.ActivityRequest is not null, "an activity");
                before.Add((item.ActivityRequest.OrchestrationInstance.InstanceId, item.ActivityRequest.TaskId, item.CompletionToken));
            }
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();

        using (var channel = GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await using var worker = await RawWorker.ConnectAsync(raw);
            // The owed activities are handed out again; then the late answers to the old ones arrive.
            var again = new List<P.WorkItem>();
            for (int i = 0; i < ids.Length * 2; i++) again.Add(await worker.NextAsync(w => w.ActivityRequest is not null, "an activity"));
            foreach (var (id, taskId, token) in before)
            {
                await raw.CompleteActivityTaskAsync(new P.ActivityResponse { InstanceId = id, TaskId = taskId, Result = $"\"late-{id}-{taskId}\"", CompletionToken = token });
            }

            foreach (var item in again)
            {
                var request = item.ActivityRequest;
                string id = request.OrchestrationInstance.InstanceId;
                await raw.CompleteActivityTaskAsync(new P.ActivityResponse
                {
                    InstanceId = id, TaskId = request.TaskId, Result = $"\"fresh-{id}-{request.TaskId}\"", CompletionToken = item.CompletionToken,
                });
            }

            // The two results of an orchestration may arrive in one episode or in two, in any order across orchestrations.
            var results = ids.ToDictionary(id => id, _ => new List<P.TaskCompletedEvent>());
            var finished = new HashSet<string>();
            while (finished.Count < ids.Length)
            {
                var item = await worker.NextAsync(w => w.OrchestratorRequest is not null, "an orchestrator request");
                string id = item.OrchestratorRequest.InstanceId;
                results[id].AddRange(item.OrchestratorRequest.NewEvents.Where(e => e.TaskCompleted is not null).Select(e => e.TaskCompleted));
                var response = new P.OrchestratorResponse { InstanceId = id, CompletionToken = item.CompletionToken };
                if (results[id].Count >= 2)
                {
                    Assert.Equal([$"\"fresh-{id}-0\"", $"\"fresh-{id}-1\""], results[id].OrderBy(r => r.TaskScheduledId).Select(r => r.Result));
                    response.Actions.Add(new P.OrchestratorAction
                    {
                        Id = 2,
                        CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = "\"done\"" },
                    });
                    finished.Add(id);
                }

                await raw.CompleteOrchestratorTaskAsync(response);
            }

            foreach (var id in ids)
            {
                var state = await Waits.UntilAsync(
                    async () => (await raw.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = id, GetInputsAndOutputs = true })).OrchestrationState,
                    s => s.OrchestrationStatus == P.OrchestrationStatus.Completed, $"instance '{id}' to complete");
                Assert.Equal("\"done\"", state.Output);
            }
        }
    }
}
