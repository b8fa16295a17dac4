using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DurableTask.Scheduler.Hosting;

/// <summary>The scheduler's own traces and metrics.</summary>
public static class SchedulerTelemetry
{
    public const string Name = "DurableTask.Scheduler";
    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> WorkItemsDispatched = Meter.CreateCounter<long>("dts.workitems.dispatched", "{work_item}", "Work items sent to workers.");
    public static readonly Histogram<double> CommitLatency = Meter.CreateHistogram<double>("dts.store.commit.duration", "ms", "Time to write one group commit.");
    public static readonly Histogram<long> CommitBatchSize = Meter.CreateHistogram<long>("dts.store.commit.batch_size", "{record}", "Records written by one group commit.");

    public static void RecordCommit(Storage.CommitBatch batch, TimeSpan elapsed)
    {
        CommitLatency.Record(elapsed.TotalMilliseconds);
        CommitBatchSize.Record(batch.Instances.Count + batch.Entities.Count + batch.DeletedInstances.Count + batch.DeletedEntities.Count);
    }

    public static readonly Counter<long> WorkItemsCompleted = Meter.CreateCounter<long>("dts.workitems.completed", "{work_item}", "Work items completed by workers.");
}
