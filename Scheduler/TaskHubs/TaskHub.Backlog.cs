using DurableTask.Scheduler.Dispatch;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What waits for a worker, by type, name and version, and what each worker's filters accept: for operators.</summary>
public sealed partial class TaskHub
{
    /// <summary>
    /// The work waiting for a worker (the counts of <see cref="GetBacklog"/>), grouped by type, name and version, with
    /// the number of connected workers that accept each group. Walks the ready queues: for the API, not for gauges.
    /// </summary>
    public IReadOnlyList<BacklogGroup> GetBacklogGroups()
    {
        lock (_gate)
        {
            var groups = new BacklogGroups();
            foreach (var instance in _readyOrchestrations) groups.Add(WorkKind.Orchestration, instance.Name, instance.Version);
            foreach (var instance in _awaitingCommit) groups.Add(WorkKind.Orchestration, instance.Name, instance.Version);
            foreach (var task in _readyActivities) groups.Add(WorkKind.Activity, task.Name, task.Version);
            foreach (var entity in _readyEntities) groups.Add(WorkKind.Entity, entity.Name, null);
            return groups.ToList(_workers);
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
