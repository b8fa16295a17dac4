using System.Diagnostics;
using DurableTask.Scheduler.Tests.Infrastructure;
using Xunit;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Every episode makes the worker replay the whole history. An orchestration with a long history and many activities
/// still out waits for more of their results before its next episode (at most 0.1 ms per history event), and goes on
/// at once when the last result, or any other message, arrives. Driven with a raw worker, so the timing is the
/// scheduler's alone.
/// </summary>
public sealed class FanInHoldTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    internal static async Task<TimeSpan> TimeToSecondEpisodeAsync(SchedulerFixture scheduler, int activities)
    {
        var (worker, raw, id, _) = await FanOutAsync(scheduler, activities);
        await using var _ = worker;
        var sinceFirstEpisode = Stopwatch.StartNew();
        var first = await worker.NextActivityAsync(id);
        await CompleteAsync(raw, id, first);
        await NextEpisodeAsync(worker, id, []);
        return sinceFirstEpisode.Elapsed;
    }

    /// <summary>Enough activities that the history passes the hold threshold after the first episode.</summary>
    internal const int Activities = 3_000;

    internal static readonly TimeSpan HoldOfFirstEpisode = TimeSpan.FromMilliseconds((Activities + 3) / 10.0);

    /// <summary>Starts an orchestration whose first episode schedules <paramref name="activities"/> activities.</summary>
    Task<(RawWorker Worker, P.TaskHubSidecarService.TaskHubSidecarServiceClient Raw, string Id, Stopwatch SinceFirstEpisode)> FanOutAsync(int activities) =>
        FanOutAsync(scheduler, activities);

    static async Task<(RawWorker Worker, P.TaskHubSidecarService.TaskHubSidecarServiceClient Raw, string Id, Stopwatch SinceFirstEpisode)> FanOutAsync(SchedulerFixture scheduler, int activities)
    {
        var raw = scheduler.Raw(SchedulerFixture.NewHub());
        var worker = await RawWorker.ConnectAsync(raw);
        string id = "fan-" + Guid.NewGuid().ToString("N");
        var sinceFirstEpisode = await StartFanOutAsync(raw, worker, id, activities);
        return (worker, raw, id, sinceFirstEpisode);
    }

    /// <summary>
    /// Starts <paramref name="id"/> and answers its first episode with <paramref name="activities"/> activities. The
    /// stopwatch returned started just before the answer was sent, so no hold can have begun before it.
    /// </summary>
    internal static async Task<Stopwatch> StartFanOutAsync(P.TaskHubSidecarService.TaskHubSidecarServiceClient raw, RawWorker worker, string id, int activities)
    {
        await raw.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "FanOut" });
        var first = await worker.NextOrchestratorAsync(id);
        var response = new P.OrchestratorResponse { InstanceId = id, CompletionToken = first.CompletionToken };
        for (int i = 0; i < activities; i++)
            response.Actions.Add(new P.OrchestratorAction { Id = i, ScheduleTask = new P.ScheduleTaskAction { Name = "Part", Input = $"{i}" } });
        var sinceFirstEpisode = Stopwatch.StartNew();
        await raw.CompleteOrchestratorTaskAsync(response);
        return sinceFirstEpisode;
    }

    /// <summary>The next orchestrator work item of <paramref name="id"/>; activity work items read meanwhile go to <paramref name="activities"/>.</summary>
    internal static Task<P.WorkItem> NextEpisodeAsync(RawWorker worker, string id, List<P.WorkItem> activities) =>
        worker.NextAsync(w =>
        {
            if (w.ActivityRequest is not null) activities.Add(w);
            return w.OrchestratorRequest?.InstanceId == id;
        }, $"an orchestrator request for '{id}'");

    internal static Task CompleteAsync(P.TaskHubSidecarService.TaskHubSidecarServiceClient raw, string id, P.WorkItem activity) =>
        raw.CompleteActivityTaskAsync(new P.ActivityResponse
        {
            InstanceId = id,
            TaskId = activity.ActivityRequest.TaskId,
            Result = $"{activity.ActivityRequest.TaskId}",
            CompletionToken = activity.CompletionToken,
        }).ResponseAsync;

    [Fact]
    public async Task LargeFanOut_WaitsForMoreResults_ThenGoesOnWhenTheLastArrives()
    {
        var (worker, raw, id, sinceFirstEpisode) = await FanOutAsync(Activities);
        await using var _ = worker;

        // One result in: the next episode waits (about 300 ms from the end of the first episode).
        var activities = new List<P.WorkItem> { await worker.NextActivityAsync(id) };
        await CompleteAsync(raw, id, activities[0]);
        var second = await NextEpisodeAsync(worker, id, activities);
        var waited = sinceFirstEpisode.Elapsed;
        output.WriteLine($"second episode {waited.TotalMilliseconds:F0} ms after the first, with {second.OrchestratorRequest.NewEvents.Count} new events");
        Assert.True(waited >= HoldOfFirstEpisode * 0.8, $"the second episode came {waited.TotalMilliseconds:F0} ms after the first, before the hold of {HoldOfFirstEpisode.TotalMilliseconds:F0} ms ended");
        Assert.Contains(second.OrchestratorRequest.NewEvents, e => e.TaskCompleted?.TaskScheduledId == activities[0].ActivityRequest.TaskId);

        // Everything else answers while the second episode runs: the third episode, dispatched once the second is
        // done, comes at once with all of them (the last result ended the hold).
        // (The scheduler hands a worker a bounded number of activities at a time: each answer lets the next one come.)
        int alreadyIn = second.OrchestratorRequest.NewEvents.Count(e => e.TaskCompleted is not null);
        for (int answered = 1; answered < Activities; answered++)
        {
            if (activities.Count <= answered) activities.Add(await worker.NextActivityAsync(id));
            await CompleteAsync(raw, id, activities[answered]);
        }

        var sinceSecondDone = Stopwatch.StartNew();
        await raw.CompleteOrchestratorTaskAsync(new P.OrchestratorResponse { InstanceId = id, CompletionToken = second.CompletionToken });
        var third = await worker.NextOrchestratorAsync(id);
        output.WriteLine($"third episode {sinceSecondDone.ElapsedMilliseconds} ms after the second completed");
        Assert.Equal(Activities - alreadyIn, third.OrchestratorRequest.NewEvents.Count(e => e.TaskCompleted is not null));
    }

    [Fact]
    public async Task LargeFanOut_GoesOnAtOnce_WhenAnEventArrives()
    {
        // Twice as many activities: a hold of about 600 ms.
        var (worker, raw, id, _) = await FanOutAsync(2 * Activities);
        await using var _ = worker;

        // A result waits for the hold; the event ends it.
        var first = await worker.NextActivityAsync(id);
        await CompleteAsync(raw, id, first);
        var sinceEvent = Stopwatch.StartNew();
        await raw.RaiseEventAsync(new P.RaiseEventRequest { InstanceId = id, Name = "Go", Input = "\"now\"" });
        var next = await NextEpisodeAsync(worker, id, []);
        output.WriteLine($"next episode {sinceEvent.ElapsedMilliseconds} ms after the event");
        Assert.Contains(next.OrchestratorRequest.NewEvents, e => e.TaskCompleted?.TaskScheduledId == first.ActivityRequest.TaskId);
        Assert.Contains(next.OrchestratorRequest.NewEvents, e => e.EventRaised?.Name == "Go");
        Assert.True(sinceEvent.Elapsed < HoldOfFirstEpisode, $"the episode came {sinceEvent.ElapsedMilliseconds} ms after the event: it waited for the hold");
    }
}

/// <summary>With <c>Scheduler:MaxFanInHold=0</c> a large fan-in goes on with every result, as a small one does.</summary>
public sealed class FanInHoldOffTests(NoFanInHoldSchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<NoFanInHoldSchedulerFixture>
{
    [Fact]
    public async Task LargeFanOut_IsNotHeld_WhenTheHoldIsOff()
    {
        var waited = await FanInHoldTests.TimeToSecondEpisodeAsync(scheduler, FanInHoldTests.Activities);
        output.WriteLine($"second episode {waited.TotalMilliseconds:F0} ms after the first");
        Assert.True(waited < FanInHoldTests.HoldOfFirstEpisode, $"the second episode came {waited.TotalMilliseconds:F0} ms after the first, as if held");
    }
}
