using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Hubs larger than memory: with a durable store, at most <see cref="Configuration.SchedulerOptions.MaxFinishedInstancesInMemory"/>
/// finished instances stay in memory (the most recently finished or read). Older ones live only in the store: an
/// operation on one reads it back first (<see cref="EnsureLoadedAsync"/>), and queries merge the store's pages with memory.
/// Unfinished instances and entities always stay in memory.
/// </summary>
public sealed partial class TaskHub
{
    /// <summary>An instance read back from the store stays at least this long before it may be evicted again.</summary>
    static readonly TimeSpan LoadedPin = TimeSpan.FromSeconds(10);

    /// <summary>Finished instances in memory, in the order they finished (or were read back).</summary>
    readonly LinkedList<Instance> _finished = new();

    /// <summary>Finished instances that are only in the store, per <see cref="OrchestrationStatus"/> value.</summary>
    readonly int[] _finishedInStore = new int[8];

    /// <summary>True once the store may hold finished instances that are not in memory.</summary>
    volatile bool _spilled;

    /// <summary>Bumped whenever an instance leaves memory (removed or evicted), so a read racing with it is redone.</summary>
    long _departures;

    int MaxFinishedInMemory => Durable ? Math.Max(0, _options.MaxFinishedInstancesInMemory) : int.MaxValue;

    void TrackFinished(Instance instance)
    {
        if (!Durable || instance.FinishedNode is not null) return;
        instance.FinishedNode = _finished.AddLast(instance);
    }

    void UntrackFinished(Instance instance)
    {
        if (instance.FinishedNode is not { } node) return;
        _finished.Remove(node);
        instance.FinishedNode = null;
    }

    /// <summary>Moves the oldest committed finished instances out of memory while there are more than the cap. Runs under the lock after a commit.</summary>
    void EvictFinished()
    {
        int cap = MaxFinishedInMemory;
        int excess = _finished.Count - cap;
        if (excess <= 0) return;
        var now = Now;
        int budget = excess + 256;
        var node = _finished.First;
        while (node is not null && excess > 0 && budget-- > 0)
        {
            var next = node.Next;
            var instance = node.Value;
            if (!instance.IsTerminal || !_instances.TryGetValue(instance.InstanceId, out var current) || !ReferenceEquals(current, instance))
            {
                // Rewound or replaced since it finished: no longer a finished instance of this hub.
                UntrackFinished(instance);
                excess--;
            }
            else if (_commits.IsStored(instance) && instance.InFlight is null
                && !instance.Queued && instance.InboxCount == 0 && instance.PinnedUntil <= now && !_waiters.ContainsKey(instance.InstanceId))
            {
                UntrackFinished(instance);
                _instances.Remove(instance.InstanceId);
                _ids.Remove(instance.InstanceId);
                if (instance.StatusCounts is not null)
                {
                    _statusCounts[(int)instance.Status]--;
                    instance.StatusCounts = null;
                }

                _finishedInStore[(int)instance.Status]++;
                _departures++;
                _spilled = true;
                excess--;
            }

            node = next;
        }
    }

    /// <summary>Brings an instance that is only in the store back into memory (and keeps one that is in memory there for a while).</summary>
    public ValueTask EnsureLoadedAsync(string instanceId, CancellationToken cancellationToken = default) =>
        _spilled ? LoadAsync(instanceId, cancellationToken) : ValueTask.CompletedTask;

    async ValueTask LoadAsync(string instanceId, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            var (where, detached, departures) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (_instances.TryGetValue(instanceId, out var present))
                {
                    present.PinnedUntil = Now + LoadedPin;
                    return;
                }

                if (where != Presence.InStore) return;
                // Something left memory since the read: what was read may be older than that. Read again.
                if (_departures != departures) continue;

                var instance = detached!;
                AddInstance(instance);
                if (instance.IsTerminal)
                {
                    instance.PackHistory();
                    ref int inStore = ref _finishedInStore[(int)instance.Status];
                    if (inStore > 0) inStore--;
                    TrackFinished(instance);
                }
                else
                {
                    ResumeOwedWork(instance);
                    Pump();
                }

                instance.PinnedUntil = Now + LoadedPin;
                return;
            }
        }
    }

    enum Presence { Nowhere, InMemory, InStore }

    /// <summary>
    /// Reads an instance that is only in the store without bringing it into memory (for reads). Says
    /// <see cref="Presence.InMemory"/> when memory has it, so the caller reads it there.
    /// </summary>
    async ValueTask<(Presence Where, Instance? Detached, long Departures)> ReadFromStoreAsync(string instanceId, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            long departures;
            lock (_gate)
            {
                if (_instances.ContainsKey(instanceId)) return (Presence.InMemory, null, 0);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null, 0);
                departures = _departures;
            }

            StoredInstance? stored;
            try
            {
                stored = await _commits.Store.ReadInstanceAsync(instanceId, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                    $"the store of task hub '{Name}' is unavailable; instance '{instanceId}' cannot be read ({ex.Message})");
            }

            lock (_gate)
            {
                if (_instances.ContainsKey(instanceId)) return (Presence.InMemory, null, 0);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null, 0);
                if (_departures != departures) continue;
                return stored is null ? (Presence.Nowhere, null, 0) : (Presence.InStore, FromStored(stored), departures);
            }
        }

        return (Presence.Nowhere, null, 0);
    }

    /// <summary>Loads an instance and, through its history, its sub-orchestrations (for recursive purge and rewind).</summary>
    async ValueTask EnsureTreeLoadedAsync(string instanceId, CancellationToken cancellationToken, int depth = 0)
    {
        if (!_spilled) return;
        await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        if (depth >= 32) return;
        List<string> children;
        lock (_gate)
        {
            if (!_instances.TryGetValue(instanceId, out var instance)) return;
            children = ChildrenOf(instance);
        }

        foreach (var child in children) await EnsureTreeLoadedAsync(child, cancellationToken, depth + 1).ConfigureAwait(false);
    }

    static List<string> ChildrenOf(Instance instance)
    {
        var children = new List<string>();
        foreach (var e in instance.CopyHistory())
        {
            if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceCreated) children.Add(e.SubOrchestrationInstanceCreated.InstanceId);
        }

        return children;
    }

    /// <summary>Reads back the instances an orchestrator's completion may replace or rewind, before it is applied.</summary>
    public async ValueTask PreloadAsync(OrchestratorResponse response, CancellationToken cancellationToken)
    {
        if (!_spilled) return;
        foreach (var action in response.Actions)
        {
            if (action.CreateSubOrchestration is { } create && create.InstanceId.Length > 0)
            {
                await EnsureLoadedAsync(create.InstanceId, cancellationToken).ConfigureAwait(false);
            }
            else if (action.RewindOrchestration is { } rewind)
            {
                foreach (var e in rewind.NewHistory)
                {
                    if (e.EventTypeCase == EventTypeOneofCase.SubOrchestrationInstanceCreated)
                        await EnsureTreeLoadedAsync(e.SubOrchestrationInstanceCreated.InstanceId, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Reads back the instances an entity batch may start (and so replace), before it is applied.</summary>
    public async ValueTask PreloadAsync(EntityBatchResult result, CancellationToken cancellationToken)
    {
        if (!_spilled) return;
        foreach (var action in result.Actions)
        {
            if (action.StartNewOrchestration is { InstanceId.Length: > 0 } start)
                await EnsureLoadedAsync(start.InstanceId, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// True when the store's copy of <paramref name="id"/> is what queries should see: the instance is not in memory
    /// (or is there unchanged since its last commit) and is not being deleted. Runs under the lock.
    /// </summary>
    bool StoreCopyIsCurrent(string id, out Instance? inMemory)
    {
        if (_commits.IsDeleting(id))
        {
            inMemory = null;
            return false;
        }

        if (!_instances.TryGetValue(id, out inMemory)) return true;
        return inMemory.IsTerminal && _commits.IsStored(inMemory);
    }

    /// <summary>The statuses a query can find in the store only: finished ones (narrowed by the filter's).</summary>
    static int[] StoreStatuses(InstanceFilter filter) => filter.Statuses is { Count: > 0 } wanted
        ? FinishedStatuses.Values.Where(s => wanted.Contains((OrchestrationStatus)s)).ToArray()
        : FinishedStatuses.Values;

    /// <summary>
    /// One page of matching instances after <paramref name="after"/>, from memory and store together, and the cursor of
    /// the next page. A page may be shorter than <paramref name="pageSize"/> while a cursor is returned.
    /// </summary>
    async Task<(List<T> Page, string? Next)> MergedPageAsync<T>(InstanceFilter filter, int pageSize, string? after,
        Func<Instance, T> select, CancellationToken cancellationToken)
    {
        var order = InstanceIdOrder.Instance;
        var memory = new List<(string Id, T Item)>(Math.Min(pageSize, 128));
        string? boundary = null;
        lock (_gate)
        {
            foreach (var instance in Scan(filter, after))
            {
                memory.Add((instance.InstanceId, select(instance)));
                if (memory.Count == pageSize)
                {
                    boundary = instance.InstanceId;
                    break;
                }
            }
        }

        var stored = new List<(string Id, T Item)>();
        var statuses = StoreStatuses(filter);
        if (statuses.Length > 0)
        {
            var chunk = new List<InstanceRecord>(256);
            bool stop = false;
            var records = _commits.Store.ScanInstancesAsync(new InstanceScan(after, filter.Prefix, statuses), cancellationToken);
            await using var e = records.GetAsyncEnumerator(cancellationToken);
            while (!stop)
            {
                bool more;
                try
                {
                    more = await e.MoveNextAsync().ConfigureAwait(false);
                }
                catch (StoreUnavailableException ex)
                {
                    throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                        $"the store of task hub '{Name}' is unavailable; the query cannot be answered ({ex.Message})");
                }

                if (more)
                {
                    if (boundary is not null && order.Compare(e.Current.InstanceId, boundary) > 0) more = false;
                    else chunk.Add(e.Current);
                }

                if (chunk.Count == 256 || (!more && chunk.Count > 0))
                {
                    lock (_gate)
                    {
                        foreach (var record in chunk)
                        {
                            if (!StoreCopyIsCurrent(record.InstanceId, out var inMemory)) continue;
                            var instance = inMemory ?? FromRecord(record, null);
                            if (filter.Matches(instance)) stored.Add((instance.InstanceId, select(instance)));
                        }
                    }

                    if (stored.Count >= pageSize)
                    {
                        // Everything up to the last id read is known; beyond it the store was not read.
                        string last = chunk[^1].InstanceId;
                        if (boundary is null || order.Compare(last, boundary) < 0) boundary = last;
                        stop = true;
                    }

                    chunk.Clear();
                }

                if (!more) stop = true;
            }
        }

        // Merge by id; an instance found in both comes from memory.
        var merged = new List<(string Id, T Item)>(memory.Count + stored.Count);
        int m = 0, s = 0;
        while (m < memory.Count || s < stored.Count)
        {
            int c = m == memory.Count ? 1 : s == stored.Count ? -1 : order.Compare(memory[m].Id, stored[s].Id);
            if (c <= 0)
            {
                merged.Add(memory[m]);
                if (c == 0) s++;
                m++;
            }
            else
            {
                merged.Add(stored[s++]);
            }
        }

        if (boundary is not null) merged.RemoveAll(x => order.Compare(x.Id, boundary) > 0);
        if (merged.Count > pageSize)
        {
            merged.RemoveRange(pageSize, merged.Count - pageSize);
            return (merged.Select(x => x.Item).ToList(), merged[^1].Id);
        }

        return (merged.Select(x => x.Item).ToList(), boundary);
    }

    /// <summary>Counts by status across memory and store (the filter's own status list is ignored).</summary>
    async Task<Dictionary<OrchestrationStatus, int>> MergedCountAsync(InstanceFilter filter, CancellationToken cancellationToken)
    {
        var withoutStatus = filter with { Statuses = null };
        var counts = new Dictionary<OrchestrationStatus, int>();
        lock (_gate)
        {
            // Finished instances unchanged since their commit are counted from the store.
            foreach (var instance in Scan(withoutStatus, null))
            {
                if (instance.IsTerminal && _commits.IsStored(instance)) continue;
                counts[instance.Status] = counts.GetValueOrDefault(instance.Status) + 1;
            }
        }

        var chunk = new List<InstanceRecord>(256);
        await foreach (var record in _commits.Store.ScanInstancesAsync(new InstanceScan(null, filter.Prefix, FinishedStatuses.Values), cancellationToken).ConfigureAwait(false))
        {
            chunk.Add(record);
            if (chunk.Count == 256) CountChunk();
        }

        CountChunk();
        return counts;

        void CountChunk()
        {
            lock (_gate)
            {
                foreach (var record in chunk)
                {
                    if (!StoreCopyIsCurrent(record.InstanceId, out var inMemory)) continue;
                    var instance = inMemory ?? FromRecord(record, null);
                    if (withoutStatus.Matches(instance)) counts[instance.Status] = counts.GetValueOrDefault(instance.Status) + 1;
                }
            }

            chunk.Clear();
        }
    }

    /// <summary>Purges the finished instances that match and are only in the store, in batches.</summary>
    async Task<(int Deleted, bool Complete)> PurgeStoredAsync(InstanceFilter filter, bool recursive, Func<bool> outOfTime, CancellationToken cancellationToken)
    {
        int deleted = 0;
        var statuses = StoreStatuses(filter);
        if (statuses.Length == 0) return (0, true);
        var chunk = new List<InstanceRecord>(PurgeBatchSize);
        var tree = new List<string>();
        await foreach (var record in _commits.Store.ScanInstancesAsync(new InstanceScan(null, filter.Prefix, statuses), cancellationToken).ConfigureAwait(false))
        {
            chunk.Add(record);
            if (chunk.Count < PurgeBatchSize) continue;
            if (!await PurgeChunkAsync().ConfigureAwait(false)) return (deleted, false);
        }

        bool done = await PurgeChunkAsync().ConfigureAwait(false);
        return (deleted, done);

        async Task<bool> PurgeChunkAsync()
        {
            if (outOfTime()) return false;
            lock (_gate)
            {
                foreach (var record in chunk)
                {
                    if (_instances.ContainsKey(record.InstanceId) || !StoreCopyIsCurrent(record.InstanceId, out _)) continue;
                    var instance = FromRecord(record, null);
                    if (!filter.Matches(instance)) continue;
                    if (recursive)
                    {
                        tree.Add(record.InstanceId);
                        continue;
                    }

                    // Deleted without reading it back: its record is all a purge needs.
                    _commits.MarkDeleted(record.InstanceId);
                    ref int inStore = ref _finishedInStore[record.Status];
                    if (inStore > 0) inStore--;
                    _departures++;
                    deleted++;
                }
            }

            chunk.Clear();
            foreach (var id in tree)
            {
                await EnsureTreeLoadedAsync(id, cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_instances.TryGetValue(id, out var instance) && instance.IsTerminal) deleted += PurgeInstance(instance, recursive: true);
                }
            }

            tree.Clear();
            return true;
        }
    }

    // ---- Operations that may need an instance that is only in the store ----

    public async ValueTask<OrchestrationState?> GetStateAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var state = GetState(instanceId, includePayloads);
            if (state is not null || !_spilled || attempt == 3) return state;
            var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            if (where == Presence.InStore) return detached!.ToState(includePayloads);
            if (where == Presence.Nowhere) return null;
        }
    }

    public async ValueTask<List<HistoryEvent>?> GetHistoryAsync(string instanceId, string? executionId, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var history = GetHistory(instanceId, executionId);
            if (history is not null || !_spilled || attempt == 3) return history;
            var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            if (where == Presence.InStore)
            {
                return string.IsNullOrEmpty(executionId) || executionId == detached!.ExecutionId ? detached!.CopyHistory() : null;
            }

            if (where == Presence.Nowhere) return null;
        }
    }

    /// <summary>A finished instance that is only in the store, for a wait that can answer at once; null otherwise.</summary>
    async ValueTask<OrchestrationState?> FinishedInStoreAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken)
    {
        if (!_spilled) return null;
        var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
        return where == Presence.InStore && detached!.IsTerminal ? detached.ToState(includePayloads) : null;
    }

    public async Task<(List<OrchestrationState> Page, string? Next)> QueryAsync(InstanceFilter filter, int pageSize, string? after, bool includePayloads,
        CancellationToken cancellationToken = default)
    {
        if (!_spilled) return Query(filter, pageSize, after, includePayloads);
        return await MergedPageAsync(filter, pageSize, after, i => i.ToState(includePayloads), cancellationToken).ConfigureAwait(false);
    }

    public async Task<(List<string> Ids, string? Next)> ListIdsAsync(InstanceFilter filter, int pageSize, string? after, CancellationToken cancellationToken = default)
    {
        if (!_spilled) return ListIds(filter, pageSize, after);
        return await MergedPageAsync(filter, pageSize, after, i => i.InstanceId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Dictionary<OrchestrationStatus, int>> CountByStatusAsync(InstanceFilter filter, CancellationToken cancellationToken = default)
    {
        if (!_spilled) return CountByStatus(filter);
        return await MergedCountAsync(filter, cancellationToken).ConfigureAwait(false);
    }
}
