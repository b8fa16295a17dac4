using DurableTask.Scheduler.Tests.Infrastructure;
using Xunit;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>A scheduler that hands one worker stream at most two orchestrator work items at a time.</summary>
public sealed class OrchestrationCapSchedulerFixture : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true", "--Scheduler:MaxOrchestrationWorkItemsPerWorker=2"];
}

/// <summary>
/// <c>Scheduler:MaxOrchestrationWorkItemsPerWorker</c>: a worker that allows more holds at most that many orchestrator
/// work items; the rest follow as it completes them, and activities are not held back by it.
/// </summary>
public sealed class OrchestrationCapTests(OrchestrationCapSchedulerFixture scheduler) : IClassFixture<OrchestrationCapSchedulerFixture>
{
    [Fact]
    public async Task AWorkerAllowingMore_HoldsTheCap_AndGetsTheRestAsItCompletes()
    {
        string hub = SchedulerFixture.NewHub();
        var raw = scheduler.Raw(hub);
        await using var worker = await RawWorker.ConnectAsync(raw, new P.GetWorkItemsRequest
        {
            MaxConcurrentOrchestrationWorkItems = 10,
            MaxConcurrentActivityWorkItems = 10,
        });
        string prefix = "cap-" + Guid.NewGuid().ToString("N")[..8] + "-";
        for (int i = 0; i < 5; i++)
            await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = prefix + i, Name = "RawOrch" });

        bool IsOurs(P.WorkItem w) => w.OrchestratorRequest?.InstanceId.StartsWith(prefix, StringComparison.Ordinal) == true;
        var held = new List<P.WorkItem>
        {
            await worker.NextAsync(IsOurs, "a first orchestrator work item"),
            await worker.NextAsync(IsOurs, "a second orchestrator work item"),
        };
        // The other three wait in the hub (its autoscaling view), not in the worker, while two are held.
        await Task.Delay(TimeSpan.FromSeconds(1));
        var scale = await ScaleAsync(hub);
        Assert.Equal(2, scale.GetProperty("inFlight").GetInt32());
        Assert.Equal(3, scale.GetProperty("orchestrations").GetInt32());

        // The first holder schedules four activities: all four arrive although two orchestrator items are held.
        var first = held[0];
        await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
        {
            InstanceId = first.OrchestratorRequest.InstanceId,
            CompletionToken = first.CompletionToken,
            Actions =
            {
                Enumerable.Range(0, 4).Select(id => new P.OrchestratorAction { Id = id, ScheduleTask = new P.ScheduleTaskAction { Name = "RawAct" } }),
            },
        });

        // Completing it freed one place: the third instance's work item comes too.
        held.RemoveAt(0);
        int activities = 0;
        while (activities < 4 || held.Count < 2)
        {
            var item = await worker.NextAsync(w => IsOurs(w) || w.ActivityRequest?.OrchestrationInstance?.InstanceId == first.OrchestratorRequest.InstanceId,
                "the four activities and the next orchestrator work item");
            if (item.ActivityRequest is not null) activities++;
            else held.Add(item);
        }

        Assert.Equal(4, activities);
        Assert.Equal(2, held.Count);

        // Completing orchestrator work items lets the others through.
        var seen = new HashSet<string>(held.Select(h => h.OrchestratorRequest.InstanceId)) { first.OrchestratorRequest.InstanceId };
        while (true)
        {
            var done = held[0];
            held.RemoveAt(0);
            await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse
            {
                InstanceId = done.OrchestratorRequest.InstanceId,
                CompletionToken = done.CompletionToken,
                Actions = { new P.OrchestratorAction { Id = 9, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed } } },
            });
            if (seen.Count == 5) break;
            held.Add(await worker.NextAsync(IsOurs, "the next orchestrator work item after a completion"));
            seen.Add(held[^1].OrchestratorRequest.InstanceId);
        }

        Assert.Equal(5, seen.Count);
    }

    async Task<System.Text.Json.JsonElement> ScaleAsync(string hub)
    {
        using var http = new HttpClient();
        return System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{scheduler.HttpPort}/api/v1/taskhubs/{hub}/scale")).RootElement;
    }
}
