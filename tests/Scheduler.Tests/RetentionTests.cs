using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>Completed instances are kept for 2 seconds (a fraction of a day), failed ones forever; checked twice a second.</summary>
public sealed class RetentionSchedulerFixture : SchedulerFixture
{
    public const double CompletedDays = 2.0 / 86400;

    protected override IEnumerable<string> ExtraArgs =>
    [
        "--DTS_USE_DYNAMIC_TASK_HUBS=true",
        $"--Scheduler:Retention:*:Completed={CompletedDays.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
        "--Scheduler:RetentionCheckInterval=00:00:00.500",
    ];
}

public sealed class RetentionTests(RetentionSchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<RetentionSchedulerFixture>
{
    [Fact]
    public async Task Retention_PurgesOldInstancesOfTheConfiguredStatusOnly()
    {
        await using var app = await TestApp.StartAsync(scheduler, SchedulerFixture.NewHub("ret"), r => r
            .AddOrchestratorFunc<string, string>("Echo", (_, input) => Task.FromResult(input))
            .AddOrchestratorFunc<string, string>("Fail", (_, _) => Task.FromException<string>(new InvalidOperationException("boom"))), output);

        string completed = await app.Client.ScheduleNewOrchestrationInstanceAsync("Echo", "x");
        string failed = await app.Client.ScheduleNewOrchestrationInstanceAsync("Fail", "x");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await app.Client.CompletionAsync(completed)).RuntimeStatus);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await app.Client.CompletionAsync(failed)).RuntimeStatus);
        var finishedAt = DateTime.UtcNow;

        // Still there right after it finished: retention counts from the completion time.
        Assert.NotNull(await app.Client.GetInstanceAsync(completed));

        var gone = await Waits.UntilAsync<OrchestrationMetadata?>(() => app.Client.GetInstanceAsync(completed), s => s is null, "the completed instance to be purged");
        Assert.Null(gone);
        Assert.True(DateTime.UtcNow - finishedAt >= TimeSpan.FromDays(RetentionSchedulerFixture.CompletedDays) - TimeSpan.FromMilliseconds(50));
        Assert.NotNull(await app.Client.GetInstanceAsync(failed));
    }
}
