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
    public static readonly Counter<long> WorkItemsCompleted = Meter.CreateCounter<long>("dts.workitems.completed", "{work_item}", "Work items completed by workers.");
}
