using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;

namespace DurableTask.Scheduler.Hosting;

/// <summary>
/// Gives memory back after a burst. The managed heap keeps what it grew to until a collection runs, and an idle
/// scheduler allocates nothing, so nothing collects: after a burst of work its RSS stayed at the peak. Every
/// <see cref="SchedulerOptions.MemoryTrimInterval"/>, when no collection ran since the last look (the process is idle)
/// and the collector holds much more memory than the live heap needs, one aggressive, compacting collection returns the
/// rest to the operating system. Under load, collections run anyway and this does nothing.
/// </summary>
sealed class MemoryTrimmer(SchedulerOptions options, ILogger<MemoryTrimmer> logger) : BackgroundService
{
    /// <summary>Below this much committed memory a trim is not worth a full collection.</summary>
    const long Floor = 128L * 1024 * 1024;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.MemoryTrimInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(options.MemoryTrimInterval);
        int collections = GC.CollectionCount(0);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            int now = GC.CollectionCount(0);
            bool idle = now == collections;
            collections = now;
            if (!idle) continue;

            var info = GC.GetGCMemoryInfo();
            long live = info.HeapSizeBytes - info.FragmentedBytes;
            long committed = info.TotalCommittedBytes;
            if (committed < Floor || committed < 2 * live) continue;

            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            collections = GC.CollectionCount(0);
            Logs.MemoryTrimmed(logger, committed / (1024 * 1024), GC.GetGCMemoryInfo().TotalCommittedBytes / (1024 * 1024));
        }
    }
}
