using DurableTask.Scheduler.Storage;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What the instance cache asks of its hub before an instance leaves memory.</summary>
interface IResidencyOwner
{
    /// <summary>True when nothing in memory still needs <paramref name="instance"/>: stored as it is, no work, no waiters.</summary>
    bool MayEvict(Instance instance, DateTime now);

    /// <summary>Whether an unfinished instance may leave memory now (see <see cref="WaitingResidency"/>), and when its next timer is due.</summary>
    WaitingResidency MayEvictWaiting(Instance instance, DateTime now, out DateTime? nextTimer);
}

/// <summary>What keeps an unfinished instance in memory.</summary>
enum WaitingResidency
{
    /// <summary>
    /// Nothing: only a client (an event, a termination, a suspend or resume), a sub-orchestration's end or its timers can
    /// move it on, and it is stored as it is.
    /// </summary>
    Evictable,

    /// <summary>Something passing (work in flight or queued, a change not yet stored, a waiting client): look again later.</summary>
    Busy,

    /// <summary>It waits for something the hub holds for it in memory (an activity, an entity): it stays until it changes.</summary>
    Working,
}

/// <summary>
/// The instances of one task hub that are in memory, and what the hub knows of those that are not: the resident
/// instances by id and in id order (queries and cursors walk it), the counts by status across memory and store, and
/// eviction. With a durable store, at most <see cref="Configuration.SchedulerOptions.MaxFinishedInstancesInMemory"/>
/// finished instances stay resident (the most recently finished or read); older ones live only in the store until an
/// operation reads them back. Past <see cref="Configuration.SchedulerOptions.MaxUnfinishedInstancesInMemory"/>
/// unfinished ones, those that wait only for a client (an external event, say), a sub-orchestration or a timer leave memory too, least
/// recently changed first, and are read back when something arrives for them or their timer is due. Not thread-safe:
/// the hub calls it under its lock, except for <see cref="Spilled"/> and <see cref="UnfinishedSpilled"/>.
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

    /// <summary>Resident unfinished instances that changed since they were last found working, least recently changed first.</summary>
    readonly LinkedList<Instance> _waiting = new();

    /// <summary>
    /// Resident unfinished instances in the order they changed, each with when it did (an instance changed again is
    /// listed again, and its older entry is passed over): those still for <see cref="ParkDelay"/> are looked at once.
    /// </summary>
    readonly Queue<(Instance Instance, long At)> _still = new();

    /// <summary>
    /// How long a resident instance stays unchanged before it is parked in the store where it waits only for a client,
    /// a child or a timer: long enough that an instance answered within moments costs no extra write, short enough that
    /// a start after a crash reads little more than the instances with work.
    /// </summary>
    public static readonly TimeSpan ParkDelay = TimeSpan.FromSeconds(2);

    /// <summary>Instances that are only in the store, per <see cref="OrchestrationStatus"/> value.</summary>
    readonly int[] _inStore = new int[8];

    readonly CommitPipeline _commits;
    readonly IResidencyOwner _owner;
    readonly TimeProvider _time;
    readonly int _maxFinished;
    readonly int _maxUnfinished;
    volatile bool _spilled;
    volatile bool _unfinishedSpilled;

    public InstanceCache(CommitPipeline commits, IResidencyOwner owner, TimeProvider time, int maxFinishedInMemory, int maxUnfinishedInMemory)
    {
        _commits = commits;
        _owner = owner;
        _time = time;
        _maxFinished = Math.Max(0, maxFinishedInMemory);
        _maxUnfinished = Math.Max(0, maxUnfinishedInMemory);
    }

    /// <summary>True once the store may hold instances that are not in memory. Read without the lock.</summary>
    public bool Spilled => _spilled;

    /// <summary>True once the store may hold unfinished instances that are not in memory. Read without the lock.</summary>
    public bool UnfinishedSpilled => _unfinishedSpilled;

    /// <summary>How many times an instance left memory (removed, evicted or purged from the store).</summary>
    long _departures;

    /// <summary>Reads of the store in progress (see <see cref="BeginRead"/>), counted by the departure count when each began.</summary>
    readonly SortedDictionary<long, int> _reads = new();

    /// <summary>While reads are in progress: the instances that left memory since the oldest began, with when, in that order.</summary>
    readonly Dictionary<string, long> _departed = new(StringComparer.Ordinal);
    readonly Queue<(long At, string Id)> _departureOrder = new();

    /// <summary>
    /// A read of an instance from the store begins (the instance is not in memory). What it reads may be older than
    /// the instance's last state if the instance comes into memory, changes and leaves again meanwhile:
    /// <see cref="EndRead"/> says so.
    /// </summary>
    public long BeginRead()
    {
        _reads[_departures] = _reads.GetValueOrDefault(_departures) + 1;
        return _departures;
    }

    /// <summary>Ends a read begun at <paramref name="since"/>; true when <paramref name="instanceId"/> left memory meanwhile (read again).</summary>
    public bool EndRead(long since, string instanceId)
    {
        bool departed = _departed.TryGetValue(instanceId, out long at) && at > since;
        if (--_reads[since] == 0) _reads.Remove(since);
        long oldest = long.MaxValue;
        foreach (long key in _reads.Keys)
        {
            oldest = key;
            break;
        }

        while (_departureOrder.TryPeek(out var d) && d.At <= oldest)
        {
            _departureOrder.Dequeue();
            if (_departed.TryGetValue(d.Id, out long last) && last == d.At) _departed.Remove(d.Id);
        }

        return departed;
    }

    void Departed(string instanceId)
    {
        _departures++;
        if (_reads.Count == 0) return;
        _departed[instanceId] = _departures;
        _departureOrder.Enqueue((_departures, instanceId));
    }

    /// <summary>Resident instances.</summary>
    public int Count => _resident.Count;

    /// <summary>Instances of the hub, resident or only in the store.</summary>
    public int StoredCount => _resident.Count + _inStore.Sum();

    /// <summary>True when the store may hold instances of <paramref name="status"/> that are not in memory. Read without the lock.</summary>
    public bool AnyInStore(int status) => (uint)status >= (uint)_inStore.Length || Volatile.Read(ref _inStore[status]) > 0;

    /// <summary>
    /// True when the instances of <paramref name="statuses"/> that are only in the store are few among all those only
    /// there (under a sixteenth): a store may then find them through a status index rather than walk every id. Read
    /// without the lock: a hint.
    /// </summary>
    public bool FewInStore(IReadOnlyCollection<int>? statuses)
    {
        if (statuses is not { Count: > 0 }) return false;
        long wanted = 0, all = 0;
        for (int i = 0; i < _inStore.Length; i++)
        {
            int n = Volatile.Read(ref _inStore[i]);
            all += n;
            if (statuses.Contains(i)) wanted += n;
        }

        return wanted * 16 < all;
    }

    /// <summary>Resident unfinished instances.</summary>
    public int UnfinishedCount
    {
        get
        {
            int n = 0;
            for (int i = 0; i < _statusCounts.Length; i++)
            {
                if (!Orchestration.Statuses.IsTerminal((OrchestrationStatus)i)) n += _statusCounts[i];
            }

            return n;
        }
    }

    public IReadOnlyCollection<Instance> Resident => _resident.Values;

    /// <summary>Resident instance ids in id order.</summary>
    public SortedSet<string> Ids => _ids;

    public Instance this[string instanceId] => _resident[instanceId];

    public bool TryGet(string instanceId, out Instance instance) => _resident.TryGetValue(instanceId, out instance!);

    public bool Contains(string instanceId) => _resident.ContainsKey(instanceId);

    /// <summary>Instances per status, resident and only in the store.</summary>
    public int[] CountsByStatus()
    {
        var counts = (int[])_statusCounts.Clone();
        for (int i = 0; i < counts.Length; i++) counts[i] += _inStore[i];
        return counts;
    }

    int MaxFinished => _commits.Durable ? _maxFinished : int.MaxValue;

    int MaxUnfinished => _commits.Durable ? _maxUnfinished : int.MaxValue;

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
        Unlist(instance);
        _resident.Remove(instance.InstanceId);
        _ids.Remove(instance.InstanceId);
        if (instance.StatusCounts is not null)
        {
            _statusCounts[(int)instance.Status]--;
            instance.StatusCounts = null;
        }

        Departed(instance.InstanceId);
    }

    /// <summary>A resident instance finished: it may be evicted, oldest first, once there are more than the cap.</summary>
    public void TrackFinished(Instance instance)
    {
        Unlist(instance);
        instance.WaitingNode = null;
        if (!_commits.Durable || instance.FinishedNode is not null) return;
        instance.FinishedNode = _finished.AddLast(instance);
    }

    /// <summary>A resident unfinished instance changed: it is the most recently changed one now.</summary>
    public void Touched(Instance instance)
    {
        if (!_commits.Durable || instance.IsTerminal) return;
        long now = _time.GetUtcNow().UtcTicks;
        instance.TouchedAt = now;
        _still.Enqueue((instance, now));
        var node = instance.WaitingNode ??= new LinkedListNode<Instance>(instance);
        if (node.List is not null)
        {
            if (node.Next is null) return;
            _waiting.Remove(node);
        }

        _waiting.AddLast(node);
    }

    void Unlist(Instance instance)
    {
        if (instance.WaitingNode is { List: not null } node) _waiting.Remove(node);
    }

    void UntrackFinished(Instance instance)
    {
        if (instance.FinishedNode is not { } node) return;
        _finished.Remove(node);
        instance.FinishedNode = null;
    }

    /// <summary>An instance read back from the store (after <see cref="Add"/>) is resident again.</summary>
    public void Loaded(Instance instance)
    {
        ref int inStore = ref _inStore[(int)instance.Status];
        if (inStore > 0) inStore--;
        if (instance.IsTerminal) TrackFinished(instance);
        else Touched(instance);
    }

    /// <summary>A finished instance that was only in the store was deleted there.</summary>
    public void FinishedPurgedFromStore(string instanceId, int status)
    {
        ref int inStore = ref _inStore[status];
        if (inStore > 0) inStore--;
        Departed(instanceId);
    }

    /// <summary>At start: the instances the store holds beyond those loaded.</summary>
    public void SetInStore(int[] counts)
    {
        counts.CopyTo(_inStore, 0);
        if (_inStore.Any(n => n > 0)) _spilled = true;
        if (FinishedStatuses.Unfinished.Any(s => _inStore[s] > 0)) _unfinishedSpilled = true;
    }

    /// <summary>
    /// Moves the oldest finished instances, and the least recently changed unfinished ones that wait only for a client,
    /// a child or a timer, out of memory while there are more than their caps. Runs under the lock after a commit.
    /// </summary>
    public void Evict()
    {
        EvictFinished();
        EvictWaiting();
        ParkStill();
    }

    /// <summary>
    /// Parks in the store, without letting them go, the resident instances unchanged for <see cref="ParkDelay"/> that
    /// wait only for a client, a child or a timer (<see cref="CommitBatch.ParkedInstances"/>): a start then leaves them
    /// in the store with the others, and reads only the instances that have work. Their next change unparks them, as it
    /// does an instance read back. A bounded number is looked at per call.
    /// </summary>
    void ParkStill()
    {
        if (_still.Count == 0) return;
        var now = _time.GetUtcNow().UtcDateTime;
        long before = (now - ParkDelay).Ticks;
        // Each look costs a read of the instance's history; passing over an entry costs next to nothing.
        int looks = 256, entries = 16384;
        while (looks > 0 && entries-- > 0 && _still.TryPeek(out var entry) && entry.At <= before)
        {
            _still.Dequeue();
            var instance = entry.Instance;
            if (instance.TouchedAt != entry.At || instance.IsTerminal || instance.StoreParked
                || !_resident.TryGetValue(instance.InstanceId, out var current) || !ReferenceEquals(current, instance))
            {
                continue;
            }

            looks--;

            switch (_owner.MayEvictWaiting(instance, now, out var nextTimer))
            {
                case WaitingResidency.Evictable:
                    instance.StoreParked = true;
                    _commits.MarkParked(new ParkedInstance(instance.InstanceId, nextTimer?.Ticks) { Status = (int)instance.Status });
                    break;
                case WaitingResidency.Busy:
                    instance.TouchedAt = now.Ticks;
                    _still.Enqueue((instance, now.Ticks));
                    break;
            }
        }
    }

    void EvictWaiting()
    {
        if (_waiting.Count == 0) return;
        int excess = UnfinishedCount - MaxUnfinished;
        if (excess <= 0) return;
        var now = _time.GetUtcNow().UtcDateTime;
        // Each look at one that must stay costs a read of its history: a bounded number per commit.
        int budget = excess + 64;
        var node = _waiting.First;
        while (node is not null && excess > 0 && budget-- > 0)
        {
            var next = node.Next;
            var instance = node.Value;
            if (instance.IsTerminal || !_resident.TryGetValue(instance.InstanceId, out var current) || !ReferenceEquals(current, instance))
            {
                _waiting.Remove(node);
            }
            else
            {
                switch (_owner.MayEvictWaiting(instance, now, out var nextTimer))
                {
                    case WaitingResidency.Evictable:
                        Forget(instance);
                        if (!instance.StoreParked)
                            _commits.MarkParked(new ParkedInstance(instance.InstanceId, nextTimer?.Ticks) { Status = (int)instance.Status });
                        _inStore[(int)instance.Status]++;
                        _spilled = true;
                        _unfinishedSpilled = true;
                        excess--;
                        break;
                    case WaitingResidency.Working:
                        // Listed again when it next changes.
                        _waiting.Remove(node);
                        break;
                    default:
                        // Looked at again after the others.
                        _waiting.Remove(node);
                        _waiting.AddLast(node);
                        break;
                }
            }

            node = next;
        }
    }

    void EvictFinished()
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
                _inStore[(int)instance.Status]++;
                _spilled = true;
                excess--;
            }

            node = next;
        }
    }
}
