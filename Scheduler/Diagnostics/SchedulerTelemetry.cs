using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Diagnostics;

/// <summary>
/// The scheduler's own traces and metrics (source and meter <c>DurableTask.Scheduler</c>). The gauges that read the
/// task hubs (backlog, workers, instances by status) are created on this meter by the host (<c>SchedulerGauges</c>).
/// </summary>
public static class SchedulerTelemetry
{
    public const string Name = "DurableTask.Scheduler";
    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> WorkItemsDispatched = Meter.CreateCounter<long>("dts.workitems.dispatched", "{work_item}", "Work items sent to workers.");
    public static readonly Counter<long> WorkItemsCompleted = Meter.CreateCounter<long>("dts.workitems.completed", "{work_item}", "Work items completed by workers.");
    public static readonly Histogram<double> CommitLatency = Meter.CreateHistogram<double>("dts.store.commit.duration", "ms", "Time to write one group commit.");
    public static readonly Histogram<long> CommitBatchSize = Meter.CreateHistogram<long>("dts.store.commit.batch_size", "{record}", "Records written by one group commit.");

    public static void RecordCommit(Storage.CommitBatch batch, TimeSpan elapsed)
    {
        CommitLatency.Record(elapsed.TotalMilliseconds);
        CommitBatchSize.Record(batch.Instances.Count + batch.Entities.Count + batch.DeletedInstances.Count + batch.DeletedEntities.Count);
    }

    /// <summary>
    /// A span for handing one work item to a worker, in the trace of the orchestration or activity it belongs to
    /// (the SDK's W3C trace context stored with the work). How long the work was ready before a worker took it (no
    /// worker connected, none accepting its name or version, or all busy), from <paramref name="readySince"/> (a
    /// <paramref name="time"/> timestamp), is recorded as <c>dts.dispatch.wait_ms</c>. Costs nothing when nobody listens.
    /// </summary>
    public static void TraceDispatch(string hub, string type, string name, string instanceId, TraceContext? parent, TimeProvider time, long readySince)
    {
        if (!Source.HasListeners()) return;
        var waited = time.GetElapsedTime(readySince);
        ActivityContext.TryParse(parent?.TraceParent, parent?.TraceState, isRemote: true, out var parentContext);
        using var span = Source.StartActivity($"dispatch {type} {name}", ActivityKind.Producer, parentContext);
        if (span is null) return;
        span.SetTag("dts.hub", hub);
        span.SetTag("dts.type", type);
        span.SetTag("dts.name", name);
        span.SetTag("dts.instance_id", instanceId);
        span.SetTag("dts.dispatch.wait_ms", Math.Round(waited.TotalMilliseconds, 3));
    }

    public static Activity? StartCommit(string hub, Storage.CommitBatch batch)
    {
        if (!Source.HasListeners()) return null;
        var span = Source.StartActivity("commit", ActivityKind.Internal, default(ActivityContext));
        span?.SetTag("dts.hub", hub);
        span?.SetTag("dts.commit.instances", batch.Instances.Count);
        span?.SetTag("dts.commit.entities", batch.Entities.Count);
        return span;
    }
}
