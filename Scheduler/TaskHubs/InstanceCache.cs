using DurableTask.Scheduler.Storage;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What the instance cache asks of its hub before an instance leaves memory.</summary>
interface IResidencyOwner
{
    /// <summary>True when nothing in memory still needs <paramref name="instance"/>: stored as it is, no work, no waiters.</summary>
    bool MayEvict(Instance instance, DateTime now);
}

/// <summary>
/// The instances of one task hub that are in memory, and what the hub knows of those that are not: the resident
/// instances by id and in id order (queries and cursors walk it), the counts by status across memory and store, and
/// eviction. With a durable store, at most <see cref="Configuration.SchedulerOptions.MaxFinishedInstancesInMemory"/>
/// finished instances stay resident (the most recently finished or read); older ones live only in the store until an
/// operation reads them back. Unfinished instances always stay resident. Not thread-safe: the hub calls it under its
/// lock, except for <see cref="Spilled"/>.
/// </summary>
sealed class InstanceCache
{
    readonly Dictionary<string, Instance> _resident = new(StringComparer.Ordinal);

    /// <summary>Resident instance ids in ordinal order.</summary>
    readonly SortedSet<string> _ids = new(InstanceIdOrder.Instance);

    /// <summary>Resident instances per <see cref="OrchestrationStatus"/> value, kept up to date as statuses change.</summary>
    readonly int[] _statusCounts = new int[8];

    /// <summary>Resident finished instances, in the order they finished (or were read back): the eviction order.</summary>
    readonly LinkedList<Instance> _finished = new();

    /// <summary>Finished instances that are only in the store, per <see cref="OrchestrationStatus"/> value.</summary>
    readonly int[] _finishedInStore = new int[8];

    readonly CommitPipeline _commits;
    readonly IResidencyOwner _owner;
    readonly TimeProvider _time;
    readonly int _maxFinished;
    volatile bool _spilled;

    public InstanceCache(CommitPipeline commits, IResidencyOwner owner, TimeProvider time, int maxFinishedInMemory)
    {
        _commits = commits;
        _owner = owner;
        _time = time;
        _maxFinished = Math.Max(0, maxFinishedInMemory);
    }

    /// <summary>True once the store may hold finished instances that are not in memory. Read without the lock.</summary>
    public bool Spilled => _spilled;

    /// <summary>Bumped whenever an instance leaves memory (removed, evicted or purged from the store), so a read racing with it is redone.</summary>
    public long Departures { get; private set; }

    /// <summary>Resident instances.</summary>
    public int Count => _resident.Count;

    /// <summary>Instances of the hub, resident or only in the store.</summary>
    public int StoredCount => _resident.Count + _finishedInStore.Sum();

    public IReadOnlyCollection<Instance> Resident => _resident.Values;

    /// <summary>Resident instance ids in id order.</summary>
    public SortedSet<string> Ids => _ids;

    public Instance this[string instanceId] => _resident[instanceId];

    public bool TryGet(string instanceId, out Instance instance) => _resident.TryGetValue(instanceId, out instance!);

    public bool Contains(string instanceId) => _resident.ContainsKey(instanceId);

    /// <summary>Instances per status, resident and (finished ones) only in the store.</summary>
    public int[] CountsByStatus()
    {
        var counts = (int[])_statusCounts.Clone();
        for (int i = 0; i < counts.Length; i++) counts[i] += _finishedInStore[i];
        return counts;
    }

    int MaxFinished => _commits.Durable ? _maxFinished : int.MaxValue;

    /// <summary>Makes <paramref name="instance"/> resident (replacing one of the same id) and counts it by status.</summary>
    public void Add(Instance instance)
    {
        _resident[instance.InstanceId] = instance;
        _ids.Add(instance.InstanceId);
        instance.StatusCounts = _statusCounts;
        _statusCounts[(int)instance.Status]++;
    }

    /// <summary>Takes <paramref name="instance"/> out of memory and out of the counts (it is being deleted or replaced).</summary>
    public void Remove(Instance instance)
    {
        Forget(instance);
        UntrackFinished(instance);
    }

    void Forget(Instance instance)
    {
        _resident.Remove(instance.InstanceId);
        _ids.Remove(instance.InstanceId);
        if (instance.StatusCounts is not null)
        {
            _statusCounts[(int)instance.Status]--;
            instance.StatusCounts = null;
        }

        Departures++;
    }

    /// <summary>A resident instance finished: it may be evicted, oldest first, once there are more than the cap.</summary>
    public void TrackFinished(Instance instance)
    {
        if (!_commits.Durable || instance.FinishedNode is not null) return;
        instance.FinishedNode = _finished.AddLast(instance);
    }

    void UntrackFinished(Instance instance)
    {
        if (instance.FinishedNode is not { } node) return;
        _finished.Remove(node);
        instance.FinishedNode = null;
    }

    /// <summary>A finished instance read back from the store is resident again.</summary>
    public void FinishedLoaded(Instance instance)
    {
        ref int inStore = ref _finishedInStore[(int)instance.Status];
        if (inStore > 0) inStore--;
        TrackFinished(instance);
    }

    /// <summary>A finished instance that was only in the store was deleted there.</summary>
    public void FinishedPurgedFromStore(int status)
    {
        ref int inStore = ref _finishedInStore[status];
        if (inStore > 0) inStore--;
        Departures++;
    }

    /// <summary>At start: the finished instances the store holds beyond those loaded.</summary>
    public void SetFinishedInStore(int[] counts)
    {
        counts.CopyTo(_finishedInStore, 0);
        if (_finishedInStore.Any(n => n > 0)) _spilled = true;
    }

    /// <summary>Moves the oldest finished instances out of memory while there are more than the cap. Runs under the lock after a commit.</summary>
    public void Evict()
    {
        int excess = _finished.Count - MaxFinished;
        if (excess <= 0) return;
        var now = _time.GetUtcNow().UtcDateTime;
        int budget = excess + 256;
        var node = _finished.First;
        while (node is not null && excess > 0 && budget-- > 0)
        {
            var next = node.Next;
            var instance = node.Value;
            if (!instance.IsTerminal || !_resident.TryGetValue(instance.InstanceId, out var current) || !ReferenceEquals(current, instance))
            {
                // Rewound or replaced since it finished: no longer a finished instance of this hub.
                UntrackFinished(instance);
                excess--;
            }
            else if (_owner.MayEvict(instance, now))
            {
                UntrackFinished(instance);
                Forget(instance);
                _finishedInStore[(int)instance.Status]++;
                _spilled = true;
                excess--;
            }

            node = next;
        }
    }
}
