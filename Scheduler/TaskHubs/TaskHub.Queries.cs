using System.Diagnostics;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Domain;
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
        bool HideSubOrchestrations = false)
    {
        public bool Matches(Instance instance)
        {
            if (Statuses is { Count: > 0 } && !Statuses.Contains(instance.Status)) return false;
            if (HideSubOrchestrations && instance.ParentInstanceId is not null) return false;
            if (!string.IsNullOrEmpty(Name) && !string.Equals(instance.Name, Name, StringComparison.OrdinalIgnoreCase)) return false;
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
        IEnumerable<string> ids = _ids;
        string? prefix = string.IsNullOrEmpty(filter.Prefix) ? null : filter.Prefix;
        string? lower = prefix;
        var order = Storage.InstanceIdOrder.Instance;
        if (after is not null && (lower is null || order.Compare(after, lower) >= 0)) lower = after;
        if (lower is not null && _ids.Count > 0)
        {
            var max = _ids.Max!;
            if (order.Compare(lower, max) > 0) yield break;
            ids = _ids.GetViewBetween(lower, max);
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
            if (!_instances.TryGetValue(instanceId, out var instance)) return 0;
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
                    if (_instances.ContainsKey(instance.InstanceId)) deleted += PurgeInstance(instance, recursive);
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
                if (_instances.TryGetValue(id, out var instance) && instance.IsTerminal) deleted += PurgeInstance(instance, recursive);
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
            if (_instances.TryGetValue(e.SubOrchestrationInstanceCreated.InstanceId, out var child) && child.IsTerminal)
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
            lock (_gate) return _instances.Count + _finishedInStore.Sum();
        }
    }
}
