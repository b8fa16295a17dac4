using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.TaskHubs;

namespace DurableTask.Scheduler.Hosting;

/// <summary>
/// Purges instances older than their hub's retention policy in the background, a small batch at a time (the hub's
/// lock is released between batches), so the data plane never waits long.
/// </summary>
sealed class RetentionService(TaskHubRegistry hubs, SchedulerOptions options, SchedulerReadiness readiness, TimeProvider time, ILogger<RetentionService> logger)
    : BackgroundService
{
    static readonly TimeSpan PassTimeLimit = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Retention.Count == 0) return;
        using var timer = new PeriodicTimer(options.RetentionCheckInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!readiness.IsReady) continue;
            foreach (var hub in hubs.Hubs)
            {
                var policy = options.Retention.GetValueOrDefault(hub.Name) ?? options.Retention.GetValueOrDefault("*");
                if (policy is null) continue;
                foreach (var (status, age) in policy.Rules())
                {
                    try
                    {
                        var filter = new TaskHub.InstanceFilter(Statuses: [status], CompletedTo: time.GetUtcNow().UtcDateTime - age);
                        var (deleted, _) = await hub.PurgeMatchingAsync(filter, recursive: false, PassTimeLimit, stoppingToken);
                        if (deleted == 0) continue;
                        await hub.FlushAsync();
                        Logs.RetentionPurged(logger, deleted, status.ToString(), hub.Name);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        Logs.RetentionFailed(logger, hub.Name, ex);
                    }
                }
            }
        }
    }
}
