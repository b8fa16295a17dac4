namespace DurableTask.Scheduler.Dispatch;

/// <summary>
/// The workers connected to one task hub and the work in flight with them: which worker may take a work item
/// (capacity, filters, round robin), the completion tokens that name work in flight, and each worker's counts. Not
/// thread-safe: the hub calls it under its lock.
/// </summary>
public sealed class WorkerPool
{
    readonly List<WorkerConnection> _workers = new();
    readonly Dictionary<string, InFlightWork> _inFlight = new(StringComparer.Ordinal);
    int _next;
    long _tokenSequence;

    /// <summary>
    /// Differs between runs of the scheduler, so a completion a worker sends after a restart for work handed out before
    /// it never matches work handed out since (a sequence alone starts again at 1).
    /// </summary>
    readonly uint _tokenRun = (uint)Random.Shared.Next() | 1u << 31;

    public int Count => _workers.Count;

    /// <summary>Work items handed out and not yet completed or abandoned.</summary>
    public int InFlightCount => _inFlight.Count;

    public IReadOnlyList<WorkerConnection> Workers => _workers;

    public void Add(WorkerConnection worker) => _workers.Add(worker);

    public void Remove(WorkerConnection worker) => _workers.Remove(worker);

    /// <summary>Ends every worker's stream (the hub stopped or moved).</summary>
    public void CloseAll()
    {
        foreach (var worker in _workers) worker.Outbox.Writer.TryComplete();
    }

    /// <summary>A completion token for a new work item of <paramref name="kind"/> ('o', 'a' or 'e').</summary>
    public string NewToken(char kind) => string.Create(null, stackalloc char[32], $"{kind}{_tokenRun:x8}{++_tokenSequence:x}");

    /// <summary>Round-robin over workers with free capacity whose filters accept <paramref name="name"/> in <paramref name="version"/>.</summary>
    /// <param name="version">The orchestration's or activity's version (null or empty: none); null for an entity.</param>
    /// <param name="anyCapacity">False when no worker has room for work of this kind at all, so the caller can stop.</param>
    public WorkerConnection? Pick(WorkKind kind, string name, string? version, out bool anyCapacity)
    {
        anyCapacity = false;
        int count = _workers.Count;
        for (int i = 0; i < count; i++)
        {
            var worker = _workers[(_next + i) % count];
            bool capacity = kind switch
            {
                WorkKind.Orchestration => worker.HasOrchestrationCapacity,
                WorkKind.Activity => worker.HasActivityCapacity,
                _ => worker.HasEntityCapacity,
            };
            if (!capacity) continue;
            anyCapacity = true;
            if (worker.Accepts(kind, name, version))
            {
                _next = (_next + i + 1) % count;
                return worker;
            }
        }

        return null;
    }

    /// <summary>How many connected workers' filters accept work of <paramref name="kind"/>, name and version, busy or not.</summary>
    public int CountAccepting(WorkKind kind, string name, string? version)
    {
        int count = 0;
        foreach (var worker in _workers)
        {
            if (!worker.Closed && worker.Accepts(kind, name, version)) count++;
        }

        return count;
    }

    /// <summary>Records <paramref name="work"/> as handed to its worker, until <see cref="End"/>.</summary>
    public void Hand(InFlightWork work)
    {
        _inFlight.Add(work.Token, work);
        var worker = work.Worker;
        worker.InFlight.Add(work);
        switch (work.Kind)
        {
            case WorkKind.Orchestration: worker.InFlightOrchestrations++; break;
            case WorkKind.Activity: worker.InFlightActivities++; break;
            default: worker.InFlightEntities++; break;
        }
    }

    /// <summary>The work in flight a completion token names, if any (none: it was completed, abandoned, or is from another run).</summary>
    public bool TryGet(string token, out InFlightWork work) => _inFlight.TryGetValue(token, out work!);

    public bool IsInFlight(InFlightWork work) => _inFlight.ContainsKey(work.Token);

    /// <summary>The work is no longer in flight: completed, abandoned or dropped.</summary>
    public void End(InFlightWork work)
    {
        _inFlight.Remove(work.Token);
        var worker = work.Worker;
        worker.InFlight.Remove(work);
        switch (work.Kind)
        {
            case WorkKind.Orchestration: worker.InFlightOrchestrations--; break;
            case WorkKind.Activity: worker.InFlightActivities--; break;
            default: worker.InFlightEntities--; break;
        }
    }
}
