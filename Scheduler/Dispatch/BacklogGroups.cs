namespace DurableTask.Scheduler.Dispatch;

/// <summary>
/// Work of one type, name and version waiting for a worker: how many items, and how many connected workers' filters
/// accept it (busy or not). None accepting means the work waits until a worker that serves it connects.
/// </summary>
/// <param name="Version">null for no version (and always for entities, which have none).</param>
public sealed record BacklogGroup(WorkKind Kind, string Name, string? Version, int Count, int AcceptingWorkers);

/// <summary>
/// Counts waiting work by type, name and version, names and versions compared as worker filters compare them
/// (<see cref="WorkFilter"/>). Built for one look at a hub's queues, under its lock; not on the dispatch path.
/// </summary>
public sealed class BacklogGroups
{
    readonly Dictionary<Key, int> _counts = new(KeyComparer.Instance);

    public void Add(WorkKind kind, string name, string? version)
    {
        var key = new Key(kind, name, WorkFilter.Normalize(version));
        _counts[key] = _counts.GetValueOrDefault(key) + 1;
    }

    /// <summary>The groups, those no connected worker accepts first, then by type, name and version.</summary>
    public List<BacklogGroup> ToList(WorkerPool workers) => _counts
        .Select(e => new BacklogGroup(e.Key.Kind, e.Key.Name, e.Key.Version.Length == 0 ? null : e.Key.Version, e.Value,
            workers.CountAccepting(e.Key.Kind, e.Key.Name, e.Key.Version)))
        .OrderBy(g => g.AcceptingWorkers > 0)
        .ThenBy(g => g.Kind)
        .ThenBy(g => g.Name, StringComparer.OrdinalIgnoreCase)
        .ThenBy(g => g.Version, StringComparer.OrdinalIgnoreCase)
        .ToList();

    readonly record struct Key(WorkKind Kind, string Name, string Version);

    sealed class KeyComparer : IEqualityComparer<Key>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(Key x, Key y) => x.Kind == y.Kind
            && StringComparer.OrdinalIgnoreCase.Equals(x.Name, y.Name)
            && StringComparer.OrdinalIgnoreCase.Equals(x.Version, y.Version);

        public int GetHashCode(Key key) => HashCode.Combine(key.Kind,
            StringComparer.OrdinalIgnoreCase.GetHashCode(key.Name), StringComparer.OrdinalIgnoreCase.GetHashCode(key.Version));
    }
}
