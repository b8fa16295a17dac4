using DurableTask.Scheduler.Dispatch;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What waits for a worker, by type, name and version, and what each worker's filters accept: for operators.</summary>
public sealed partial class TaskHub
{
    /// <summary>The work waiting for a worker by type, name and version (<see cref="WorkDispatcher.GroupBacklog"/>).</summary>
    public IReadOnlyList<BacklogGroup> GetBacklogGroups()
    {
        lock (_gate)
        {
            return _dispatch.GroupBacklog();
        }
    }

    /// <summary>Each connected worker's filters, by its id; a worker without filters takes every name and version.</summary>
    public IReadOnlyList<WorkerFilters> GetWorkerFilters()
    {
        lock (_gate)
        {
            return _workers.Workers.Select(w => new WorkerFilters(w.Id,
                w.OrchestrationFilter?.Entries(), w.ActivityFilter?.Entries(), w.EntityFilter?.Entries())).ToList();
        }
    }
}

/// <summary>What one worker's filters accept: names, each with its versions (none: every version); null lists = no filters.</summary>
public sealed record WorkerFilters(
    string WorkerId,
    IReadOnlyList<(string Name, IReadOnlyList<string> Versions)>? Orchestrations,
    IReadOnlyList<(string Name, IReadOnlyList<string> Versions)>? Activities,
    IReadOnlyList<(string Name, IReadOnlyList<string> Versions)>? Entities);
