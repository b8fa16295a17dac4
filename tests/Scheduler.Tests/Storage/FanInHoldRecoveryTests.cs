using System.Diagnostics;
using DurableTask.Scheduler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// A large fan-out still waits for more results after the scheduler was killed and started again: the activities it
/// is owed, and how many are open, come from its stored history.
/// </summary>
public sealed class FanInHoldRecoveryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task LargeFanOut_KeepsWaitingForMoreResults_AfterAKill()
    {
        using var work = new TempFolder("fan-in");
        Directory.CreateDirectory(work.Path);
        await using var scheduler = new SchedulerProcess(output, work.Path, SchedulerProcess.StoreSettings(null, work.Path));
        await scheduler.StartAsync();
        string id = "fan-" + Guid.NewGuid().ToString("N");

        using (var channel = Grpc.Net.Client.GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await using var worker = await RawWorker.ConnectAsync(raw);
            await FanInHoldTests.StartFanOutAsync(raw, worker, id, FanInHoldTests.Activities);
            // Activities are handed out once the episode that scheduled them is durable.
            await worker.NextActivityAsync(id);
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();

        using (var channel = Grpc.Net.Client.GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await using var worker = await RawWorker.ConnectAsync(raw);
            var pending = new List<P.WorkItem> { await worker.NextActivityAsync(id) };

            // The first result after the restart runs an episode at once (nothing was held yet)...
            await FanInHoldTests.CompleteAsync(raw, id, pending[0]);
            var afterRestart = await FanInHoldTests.NextEpisodeAsync(worker, id, pending);
            var sinceEpisode = Stopwatch.StartNew();
            await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse { InstanceId = id, CompletionToken = afterRestart.CompletionToken });

            // ...and the one after it waits for more, as before the kill: the orchestration still has thousands out.
            if (pending.Count < 2) pending.Add(await worker.NextActivityAsync(id));
            await FanInHoldTests.CompleteAsync(raw, id, pending[1]);
            var held = await FanInHoldTests.NextEpisodeAsync(worker, id, pending);
            var waited = sinceEpisode.Elapsed;
            output.WriteLine($"episode after the second result came {waited.TotalMilliseconds:F0} ms after the first episode since the restart");
            Assert.Contains(held.OrchestratorRequest.NewEvents, e => e.TaskCompleted?.TaskScheduledId == pending[1].ActivityRequest.TaskId);
            Assert.True(waited >= FanInHoldTests.HoldOfFirstEpisode * 0.8,
                $"the episode came {waited.TotalMilliseconds:F0} ms after the previous one: the fan-in hold of about {FanInHoldTests.HoldOfFirstEpisode.TotalMilliseconds:F0} ms was lost in the restart");
        }
    }
}
