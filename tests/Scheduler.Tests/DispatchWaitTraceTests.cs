using System.Collections.Concurrent;
using System.Diagnostics;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// The dispatch span of a work item tells how long the work was ready before a worker took it, so a trace shows
/// where an orchestration's time went: here, waiting for a worker that connects later.
/// </summary>
public sealed class DispatchWaitTraceTests(SchedulerFixture scheduler) : IClassFixture<SchedulerFixture>
{
    const string WaitTag = "dts.dispatch.wait_ms";

    [Fact]
    public async Task TheDispatchSpanRecordsHowLongTheWorkWaitedForAWorker()
    {
        var hub = SchedulerFixture.NewHub("wait");
        var id = $"slow-{Guid.NewGuid():N}";
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SchedulerTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = span =>
            {
                if (span.GetTagItem("dts.instance_id") as string == id) spans.Enqueue(span);
            },
        };
        ActivitySource.AddActivityListener(listener);

        // Started while no worker is connected: the orchestration is ready, and waits.
        await using var client = await TestApp.StartAsync(scheduler, hub, tasks: null);
        await client.Client.ScheduleNewOrchestrationInstanceAsync("Slow", "x", new StartOrchestrationOptions(id));
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        Assert.Empty(spans);

        await using var worker = await TestApp.StartAsync(scheduler, hub, tasks =>
        {
            tasks.AddOrchestratorFunc<string, string>("Slow", (context, input) => context.CallActivityAsync<string>("Step", input));
            tasks.AddActivityFunc<string, string>("Step", (_, input) => input + "!");
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var done = await client.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
        Assert.Equal("\"x!\"", done.SerializedOutput);

        var orchestrator = spans.Where(s => s.DisplayName == "dispatch orchestrator Slow").ToList();
        Assert.Equal(2, orchestrator.Count); // the start, then the activity's result
        double waitedForTheWorker = Assert.IsType<double>(orchestrator[0].GetTagItem(WaitTag));
        Assert.True(waitedForTheWorker >= 700, $"the first episode waited {waitedForTheWorker} ms for the worker that connected after 700 ms");

        // Work that became ready while the worker was there counts from its own readiness, not from the instance's start.
        var activity = Assert.Single(spans, s => s.DisplayName == "dispatch activity Step");
        double activityWait = Assert.IsType<double>(activity.GetTagItem(WaitTag));
        double resultWait = Assert.IsType<double>(orchestrator[1].GetTagItem(WaitTag));
        Assert.InRange(activityWait, 0, waitedForTheWorker - 1);
        Assert.InRange(resultWait, 0, waitedForTheWorker - 1);
    }
}
