using System.Diagnostics.Metrics;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Hosting;

/// <summary>
/// The gauges of <see cref="SchedulerTelemetry.Meter"/> that read a running scheduler's task hubs: backlog, connected
/// workers and instances by status. They are created when the first scheduler starts observing its hubs.
/// </summary>
public static class SchedulerGauges
{
    static readonly List<TaskHubRegistry> Observed = new();

    static SchedulerGauges()
    {
        SchedulerTelemetry.Meter.CreateObservableGauge("dts.backlog", Backlog, "{work_item}", "Work items waiting for a worker, by hub and type.");
        SchedulerTelemetry.Meter.CreateObservableGauge("dts.workers.connected", () => AllHubs().Select(h =>
            new Measurement<int>(h.GetWorkers().Count, new KeyValuePair<string, object?>("hub", h.Name))), "{worker}", "Connected work-item streams, by hub.");
        SchedulerTelemetry.Meter.CreateObservableGauge("dts.instances", Instances, "{instance}", "Orchestration instances by hub and status.");
    }

    /// <summary>Makes a running scheduler's hubs visible to the gauges (backlog, workers, instances by status).</summary>
    public static void Observe(TaskHubRegistry hubs)
    {
        lock (Observed) Observed.Add(hubs);
    }

    public static void Unobserve(TaskHubRegistry hubs)
    {
        lock (Observed) Observed.Remove(hubs);
    }

    static List<TaskHub> AllHubs()
    {
        lock (Observed) return Observed.SelectMany(r => r.Hubs).ToList();
    }

    static IEnumerable<Measurement<int>> Backlog()
    {
        foreach (var hub in AllHubs())
        {
            var backlog = hub.GetBacklog();
            var tag = new KeyValuePair<string, object?>("hub", hub.Name);
            yield return new Measurement<int>(backlog.Orchestrations, tag, new("type", "orchestrator"));
            yield return new Measurement<int>(backlog.Activities, tag, new("type", "activity"));
            yield return new Measurement<int>(backlog.Entities, tag, new("type", "entity"));
        }
    }

    static IEnumerable<Measurement<int>> Instances()
    {
        foreach (var hub in AllHubs())
        {
            var counts = hub.GetStatusCounts();
            for (int status = 0; status < counts.Length; status++)
            {
                if (counts[status] == 0) continue;
                yield return new Measurement<int>(counts[status], new("hub", hub.Name),
                    new("status", ((OrchestrationStatus)status).ToString()));
            }
        }
    }
}
