using System.Diagnostics;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Multi-instance queries and purges. Cursors are instance ids, so a page never repeats or skips an item.</summary>
public sealed partial class TaskHub
{
    public const int MaxPageSize = 1000;
    const int PurgeBatchSize = 500;

    /// <summary>Filters shared by the gRPC query and the HTTP API.</summary>
    public sealed record InstanceFilter(
        IReadOnlyCollection<OrchestrationStatus>? Statuses = null,
        DateTime? CreatedFrom = null,
        DateTime? CreatedTo = null,
        string? Prefix = null,
        DateTime? CompletedFrom = null,
        DateTime? CompletedTo = null,
        string? Name = null,
        string? Search = null,
        IReadOnlyDictionary<string, string>? Tags = null,
        bool HideSubOrchestrations = false,
        string? Version = null)
    {
        public bool Matches(Instance instance)
        {
            if (Statuses is { Count: > 0 } && !Statuses.Contains(instance.Status)) return false;
            if (HideSubOrchestrations && instance.ParentInstanceId is not null) return false;
            if (!string.IsNullOrEmpty(Name) && !string.Equals(instance.Name, Name, StringComparison.OrdinalIgnoreCase)) return false;
            if (!string.IsNullOrEmpty(Version) && !string.Equals(instance.Version, Version, StringComparison.OrdinalIgnoreCase)) return false;
            if (!string.IsNullOrEmpty(Search) && !instance.InstanceId.Contains(Search, StringComparison.OrdinalIgnoreCase)) return false;
            if (Tags is { Count: > 0 })
            {
                if (instance.Tags is null) return false;
                foreach (var (key, value) in Tags)
                {
                    if (!instance.Tags.TryGetValue(key, out var actual) || (value.Length > 0 && actual != value)) return false;
                }
            }

            if (CreatedFrom is { } cf && instance.CreatedAt < cf) return false;
            if (CreatedTo is { } ct && instance.CreatedAt > ct) return false;
            if (CompletedFrom is { } pf && (instance.CompletedAt is not { } c1 || c1 < pf)) return false;
            if (CompletedTo is { } pt && (instance.CompletedAt is not { } c2 || c2 > pt)) return false;
            return true;
        }
    }

    /// <summary>One page of instances after <paramref name="after"/>, and the cursor of the next page (null on the last page).</summary>
    (List<OrchestrationState> Page, string? Next) Query(InstanceFilter filter, int pageSize, string? after, bool includePayloads)
    {
        var page = new List<OrchestrationState>(Math.Min(pageSize, 128));
        lock (_gate)
        {
            string? last = null;
            foreach (var instance in Scan(filter, after))
            {
                if (page.Count == pageSize) return (page, last);
                page.Add(instance.ToState(includePayloads));
                last = instance.InstanceId;
            }
        }

        return (page, null);
    }

    (List<string> Ids, string? Next) ListIds(InstanceFilter filter, int pageSize, string? after)
    {
        var ids = new List<string>(Math.Min(pageSize, 128));
        lock (_gate)
        {
            foreach (var instance in Scan(filter, after))
            {
                if (ids.Count == pageSize) return (ids, ids[^1]);
                ids.Add(instance.InstanceId);
            }
        }

        return (ids, null);
    }

    /// <summary>Counts instances by status under a filter (the filter's own status list is ignored).</summary>
    Dictionary<OrchestrationStatus, int> CountByStatus(InstanceFilter filter)
    {
        var counts = new Dictionary<OrchestrationStatus, int>();
        var withoutStatus = filter with { Statuses = null };
        lock (_gate)
        {
            foreach (var instance in Scan(withoutStatus, null))
            {
                counts[instance.Status] = counts.GetValueOrDefault(instance.Status) + 1;
            }
        }

        return counts;
    }

    IEnumerable<Instance> Scan(InstanceFilter filter, string? after)
    {
        var all = _instances.Ids;
        IEnumerable<string> ids = all;
        string? prefix = string.IsNullOrEmpty(filter.Prefix) ? null : filter.Prefix;
        string? lower = prefix;
        var order = Storage.InstanceIdOrder.Instance;
        if (after is not null && (lower is null || order.Compare(after, lower) >= 0)) lower = after;
        if (lower is not null && all.Count > 0)
        {
            var max = all.Max!;
            if (order.Compare(lower, max) > 0) yield break;
            ids = all.GetViewBetween(lower, max);
        }

        foreach (var id in ids)
        {
            if (after is not null && order.Compare(id, after) <= 0) continue;
            if (prefix is not null && !id.StartsWith(prefix, StringComparison.Ordinal)) yield break;
            var instance = _instances[id];
            if (filter.Matches(instance)) yield return instance;
        }
    }

    /// <summary>Purges one finished instance (and, if asked, its finished sub-orchestrations). 0 when it does not exist.</summary>
    int Purge(string instanceId, bool recursive)
    {
        lock (_gate)
        {
            if (!_instances.TryGet(instanceId, out var instance)) return 0;
            if (!instance.IsTerminal)
            {
                throw TaskHubException.WrongState(
                    $"orchestration instance '{instanceId}' is {StatusName(instance.Status)}; only completed, failed or terminated instances can be purged");
            }

            return PurgeInstance(instance, recursive);
        }
    }

    /// <summary>Purges every finished instance that matches, in small batches so the data plane never waits long.</summary>
    (int Deleted, bool Complete) Purge(InstanceFilter filter, bool recursive, TimeSpan? timeout)
    {
        var clock = Stopwatch.StartNew();
        int deleted = 0;
        string? after = null;
        while (true)
        {
            if (timeout is { } limit && clock.Elapsed > limit) return (deleted, false);
            lock (_gate)
            {
                var batch = new List<Instance>(PurgeBatchSize);
                string? lastSeen = null;
                int scanned = 0;
                foreach (var instance in Scan(filter, after))
                {
                    lastSeen = instance.InstanceId;
                    if (instance.IsTerminal) batch.Add(instance);
                    if (++scanned == PurgeBatchSize) break;
                }

                foreach (var instance in batch)
                {
                    if (_instances.Contains(instance.InstanceId)) deleted += PurgeInstance(instance, recursive);
                }

                if (scanned < PurgeBatchSize) return (deleted, true);
                after = lastSeen;
            }
        }
    }

    int Purge(IEnumerable<string> instanceIds, bool recursive)
    {
        int deleted = 0;
        lock (_gate)
        {
            foreach (var id in instanceIds)
            {
                if (_instances.TryGet(id, out var instance) && instance.IsTerminal) deleted += PurgeInstance(instance, recursive);
            }
        }

        return deleted;
    }

    int PurgeInstance(Instance instance, bool recursive)
    {
        RemoveInstance(instance);
        int deleted = 1;
        if (!recursive) return deleted;
        foreach (var e in instance.History)
        {
            if (e.EventTypeCase != EventTypeOneofCase.SubOrchestrationInstanceCreated) continue;
            if (_instances.TryGet(e.SubOrchestrationInstanceCreated.InstanceId, out var child) && child.IsTerminal)
            {
                deleted += PurgeInstance(child, recursive);
            }
        }

        return deleted;
    }

    /// <summary>Instances held in memory (unfinished ones and the most recent finished ones).</summary>
    public int InstancesInMemory
    {
        get
        {
            lock (_gate) return _instances.Count;
        }
    }

    public int InstanceCount
    {
        get
        {
            lock (_gate) return _instances.StoredCount;
        }
    }

    // ---- Queries across memory and store, once finished instances have been evicted ----

    public async Task<(List<OrchestrationState> Page, string? Next)> QueryAsync(InstanceFilter filter, int pageSize, string? after, bool includePayloads,
        CancellationToken cancellationToken = default)
    {
        if (!_instances.Spilled) return Query(filter, pageSize, after, includePayloads);
        return await MergedPageAsync(filter, pageSize, after, i => i.ToState(includePayloads), cancellationToken).ConfigureAwait(false);
    }

    public async Task<(List<string> Ids, string? Next)> ListIdsAsync(InstanceFilter filter, int pageSize, string? after, CancellationToken cancellationToken = default)
    {
        if (!_instances.Spilled) return ListIds(filter, pageSize, after);
        return await MergedPageAsync(filter, pageSize, after, i => i.InstanceId, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Dictionary<OrchestrationStatus, int>> CountByStatusAsync(InstanceFilter filter, CancellationToken cancellationToken = default)
    {
        if (!_instances.Spilled) return CountByStatus(filter);
        return await MergedCountAsync(filter, cancellationToken).ConfigureAwait(false);
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

        if (!_instances.TryGet(id, out inMemory)) return true;
        return _commits.IsStored(inMemory);
    }

    /// <summary>
    /// The statuses a query can find in the store only (narrowed by the filter's): finished ones, and every one once
    /// unfinished instances left memory too.
    /// </summary>
    int[] StoreStatuses(InstanceFilter filter) => Narrow(filter, _instances.UnfinishedSpilled ? AllStatuses : FinishedStatuses.Values);

    /// <summary>The finished statuses a purge reads from the store (narrowed by the filter's).</summary>
    static int[] PurgeStatuses(InstanceFilter filter) => Narrow(filter, FinishedStatuses.Values);

    static int[] Narrow(InstanceFilter filter, int[] statuses) => filter.Statuses is { Count: > 0 } wanted
        ? statuses.Where(s => wanted.Contains((OrchestrationStatus)s)).ToArray()
        : statuses;

    static readonly int[] AllStatuses = Enum.GetValues<OrchestrationStatus>().Select(s => (int)s).ToArray();

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
        // Statuses none of whose instances are only in the store are found in memory alone.
        var statuses = StoreStatuses(filter).Where(_instances.AnyInStore).ToArray();
        if (statuses.Length > 0)
        {
            var chunk = new List<InstanceRecord>(256);
            bool stop = false;
            var records = _commits.Store.ScanInstancesAsync(StoreScan(filter, after, statuses), cancellationToken);
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

    /// <summary>
    /// The store's side of <paramref name="filter"/>: the conditions its indexes can answer. The search and tag conditions
    /// are left to <see cref="InstanceFilter.Matches"/> on what it returns.
    /// </summary>
    InstanceScan StoreScan(InstanceFilter filter, string? after, IReadOnlyCollection<int> statuses) => new(after, filter.Prefix, statuses)
    {
        Selective = _instances.FewInStore(statuses),
        Name = string.IsNullOrEmpty(filter.Name) ? null : filter.Name,
        Version = string.IsNullOrEmpty(filter.Version) ? null : filter.Version,
        CreatedFrom = filter.CreatedFrom?.Ticks,
        CreatedTo = filter.CreatedTo?.Ticks,
        CompletedFrom = filter.CompletedFrom?.Ticks,
        CompletedTo = filter.CompletedTo?.Ticks,
        TopLevelOnly = filter.HideSubOrchestrations,
    };

    /// <summary>Counts by status across memory and store (the filter's own status list is ignored).</summary>
    async Task<Dictionary<OrchestrationStatus, int>> MergedCountAsync(InstanceFilter filter, CancellationToken cancellationToken)
    {
        var withoutStatus = filter with { Statuses = null };
        var counts = new Dictionary<OrchestrationStatus, int>();
        var storeStatuses = StoreStatuses(withoutStatus);
        bool fromIndexes = filter.Tags is not { Count: > 0 } && string.IsNullOrEmpty(filter.Search) && string.IsNullOrEmpty(filter.Version);
        lock (_gate)
        {
            // Instances unchanged since their commit, with a status the store is asked for, are counted from the store.
            foreach (var instance in Scan(withoutStatus, null))
            {
                if (_commits.IsStored(instance) && Array.IndexOf(storeStatuses, (int)instance.Status) >= 0) continue;
                counts[instance.Status] = counts.GetValueOrDefault(instance.Status) + 1;
                // The store's older copy of a changed instance is counted there too: once is enough.
                int stale = instance.PersistedStatus;
                if (fromIndexes && stale >= 0 && instance.InStore && Array.IndexOf(storeStatuses, stale) >= 0
                    && filter.CompletedFrom is null && filter.CompletedTo is null)
                {
                    counts[(OrchestrationStatus)stale] = counts.GetValueOrDefault((OrchestrationStatus)stale) - 1;
                }
            }
        }

        var scan = StoreScan(filter, null, storeStatuses);
        if (fromIndexes)
        {
            // Every condition is one the store's indexes answer: it counts, and no record is read. A finished instance
            // whose store copy is not current is in the middle of a commit (restarted, rewound or purged since); the
            // count may include it for that moment, as any count taken while instances change may.
            int[] stored;
            try
            {
                stored = await _commits.Store.CountInstancesAsync(scan, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                    $"the store of task hub '{Name}' is unavailable; the counts cannot be answered ({ex.Message})");
            }

            for (int i = 0; i < stored.Length; i++)
            {
                if (stored[i] > 0) counts[(OrchestrationStatus)i] = counts.GetValueOrDefault((OrchestrationStatus)i) + stored[i];
            }

            return counts;
        }

        var chunk = new List<InstanceRecord>(256);
        await foreach (var record in _commits.Store.ScanInstancesAsync(scan, cancellationToken).ConfigureAwait(false))
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
        var statuses = PurgeStatuses(filter);
        if (statuses.Length == 0) return (0, true);
        var chunk = new List<InstanceRecord>(PurgeBatchSize);
        var tree = new List<string>();
        await foreach (var record in _commits.Store.ScanInstancesAsync(StoreScan(filter, null, statuses), cancellationToken).ConfigureAwait(false))
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
                    if (_instances.Contains(record.InstanceId) || !StoreCopyIsCurrent(record.InstanceId, out _)) continue;
                    var instance = FromRecord(record, null);
                    if (!filter.Matches(instance)) continue;
                    if (recursive)
                    {
                        tree.Add(record.InstanceId);
                        continue;
                    }

                    // Deleted without reading it back: its record is all a purge needs.
                    _commits.MarkDeleted(record.InstanceId);
                    _instances.FinishedPurgedFromStore(record.InstanceId, record.Status);
                    deleted++;
                }
            }

            chunk.Clear();
            foreach (var id in tree)
            {
                await EnsureTreeLoadedAsync(id, cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_instances.TryGet(id, out var instance) && instance.IsTerminal) deleted += PurgeInstance(instance, recursive: true);
                }
            }

            tree.Clear();
            return true;
        }
    }
}
