using System.Text.Json;
using DurableTask.Scheduler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// An activity's version survives a restart: the activity asked for again from the stored history goes only to a
/// worker that accepts its version, and carries that version in its request.
/// </summary>
public sealed class VersionRecoveryTests(ITestOutputHelper output)
{
    static P.GetWorkItemsRequest Accepting(string activityVersion) => new()
    {
        WorkItemFilters = new P.WorkItemFilters
        {
            Orchestrations = { new P.OrchestrationFilter { Name = "Flow" } },
            Activities = { new P.ActivityFilter { Name = "Act", Versions = { activityVersion } } },
        },
    };

    [Fact]
    public async Task AnActivityAskedForAgainAfterAKill_KeepsItsVersion()
    {
        using var work = new TempFolder("version");
        Directory.CreateDirectory(work.Path);
        await using var scheduler = new SchedulerProcess(output, work.Path, SchedulerProcess.StoreSettings(null, work.Path));
        await scheduler.StartAsync();
        string id = "versioned-" + Guid.NewGuid().ToString("N");

        using (var channel = Grpc.Net.Client.GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await using var worker = await RawWorker.ConnectAsync(raw, Accepting("2.0"));
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "Flow", Version = "1.0" });
            var episode = await worker.NextOrchestratorAsync(id);
            await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
            {
                InstanceId = id,
                CompletionToken = episode.CompletionToken,
                Actions = { new P.OrchestratorAction { Id = 0, ScheduleTask = new P.ScheduleTaskAction { Name = "Act", Version = "2.0" } } },
            });
            Assert.Equal("2.0", (await worker.NextActivityAsync(id)).ActivityRequest.Version);
        }

        await scheduler.KillAsync();
        await scheduler.StartAsync();

        using (var channel = Grpc.Net.Client.GrpcChannel.ForAddress(scheduler.Address))
        {
            var raw = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
            await using var older = await RawWorker.ConnectAsync(raw, Accepting("1.0"));
            using var http = new HttpClient();
            var backlog = await Waits.UntilAsync(
                async () => JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{scheduler.HttpPort}/api/v1/taskhubs/default/backlog")).RootElement,
                b => b.GetProperty("activities").GetInt32() == 1 && b.GetProperty("groups").GetArrayLength() == 1, "the owed activity in the backlog");
            var group = backlog.GetProperty("groups")[0];
            Assert.Equal(("activity", "Act", "2.0", 0), (group.GetProperty("type").GetString(), group.GetProperty("name").GetString(),
                group.GetProperty("version").GetString(), group.GetProperty("acceptingWorkers").GetInt32()));

            await using var newer = await RawWorker.ConnectAsync(raw, Accepting("2.0"));
            var again = await newer.NextActivityAsync(id);
            Assert.Equal(("Act", "2.0"), (again.ActivityRequest.Name, again.ActivityRequest.Version));
        }
    }
}
