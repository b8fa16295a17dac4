using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;

namespace DurableTask.Scheduler.Storage;

/// <summary>
/// Where one task hub's state is persisted. The hub keeps its hot state in memory and hands the store batches of
/// changed records (group commit); an RPC is answered, and the work that follows from a change is dispatched, only
/// after the batch holding that change is committed.
/// </summary>
/// <remarks>
/// Outcomes: <see cref="CommitAsync"/> either makes the whole batch durable or throws (nothing of it may be visible
/// after a restart). <see cref="LoadAsync"/> returns exactly the records of every committed batch, in commit order for
/// history; a damaged store throws <see cref="StoreCorruptedException"/> naming what is damaged.
/// Infrastructure failures (store unreachable) throw <see cref="StoreUnavailableException"/>.
/// </remarks>
public interface ITaskHubStore : IAsyncDisposable
{
    /// <summary>False for the in-memory store: commits are no-ops and nothing survives a restart.</summary>
    bool IsDurable { get; }

    /// <summary>Reads everything persisted for the hub.</summary>
    Task<StoredHub> LoadAsync(CancellationToken cancellationToken) => LoadAsync(int.MaxValue, cancellationToken);

    /// <summary>
    /// Reads what the hub needs in memory: every unfinished instance (a store may leave out those parked by
    /// <see cref="CommitBatch.ParkedInstances"/> and not written since), the <paramref name="maxFinishedInstances"/>
    /// most recently finished ones and every entity. Instances left in the store are counted per status in
    /// <see cref="StoredHub.InStore"/>; they are read on demand (<see cref="ReadInstanceAsync"/>,
    /// <see cref="ScanInstancesAsync"/>).
    /// </summary>
    Task<StoredHub> LoadAsync(int maxFinishedInstances, CancellationToken cancellationToken);

    /// <summary>Atomically applies one batch.</summary>
    Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken);

    /// <summary>Reads one instance's history (all blocks of its current generation), for instances whose history is not in memory.</summary>
    Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>One instance's record and the history of its current generation; null when the store does not have it.</summary>
    Task<StoredInstance?> ReadInstanceAsync(string instanceId, CancellationToken cancellationToken);

    /// <summary>
    /// Instance records in instance id order (<see cref="InstanceIdOrder"/>), after <see cref="InstanceScan.After"/>,
    /// narrowed by what the scan names. Reads in pages, so a caller that stops early reads little.
    /// </summary>
    IAsyncEnumerable<InstanceRecord> ScanInstancesAsync(InstanceScan scan, CancellationToken cancellationToken);

    /// <summary>
    /// How many records <see cref="ScanInstancesAsync"/> would return (ignoring <see cref="InstanceScan.After"/>), per
    /// OrchestrationStatus value. A store answers from its indexes where it can; this default reads the records.
    /// </summary>
    Task<int[]> CountInstancesAsync(InstanceScan scan, CancellationToken cancellationToken) => CountByReadingAsync(this, scan, cancellationToken);

    /// <summary>Counts what <paramref name="store"/>'s scan returns, per OrchestrationStatus value, by reading every record.</summary>
    static async Task<int[]> CountByReadingAsync(ITaskHubStore store, InstanceScan scan, CancellationToken cancellationToken)
    {
        var counts = new int[8];
        await foreach (var record in store.ScanInstancesAsync(scan with { After = null }, cancellationToken).ConfigureAwait(false))
        {
            if ((uint)record.Status < (uint)counts.Length) counts[record.Status]++;
        }

        return counts;
    }

    /// <summary>
    /// The parked instances left out of the load (<see cref="CommitBatch.ParkedInstances"/>) whose next timer is due after
    /// <paramref name="after"/> (exclusive; from the start when null) and at or before <paramref name="until"/> (UTC ticks).
    /// A store that loads parked instances like any other has none.
    /// </summary>
    Task<IReadOnlyList<ParkedInstance>> ReadParkedTimersAsync(long? after, long until, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ParkedInstance>>([]);

    /// <summary>True when the store can take commits right now.</summary>
    Task<bool> IsHealthyAsync(CancellationToken cancellationToken);
}

/// <summary>Opens the store of each task hub.</summary>
public interface IStoreProvider
{
    string Name { get; }

    ITaskHubStore Open(string taskHub);

    /// <summary>The task hubs that have state in this store (hub names as stored, which may be lower-cased).</summary>
    Task<IReadOnlyList<string>> ListTaskHubsAsync(CancellationToken cancellationToken);
}

/// <summary>Everything a store holds for one hub.</summary>
public sealed class StoredHub
{
    public List<StoredInstance> Instances { get; } = new();

    /// <summary>Instances not loaded, indexed by <c>OrchestrationStatus</c> value.</summary>
    public int[] InStore { get; } = new int[8];
    public List<EntityRecord> Entities { get; } = new();
}

public sealed class StoredInstance
{
    public required InstanceRecord Record { get; init; }

    /// <summary>History blocks of the record's current generation, in commit order.</summary>
    public List<HistoryBlock> History { get; } = new();

    /// <summary>
    /// True when the stored record left the input out, so the store keeps the instance's input (or its absence) apart,
    /// as a whole write of the instance left it: updates may go on leaving it out (<see cref="InstanceChange.InputUnchanged"/>).
    /// </summary>
    public bool InputStoredApart { get; init; }
}

/// <summary>An instance parked in the store (<see cref="CommitBatch.ParkedInstances"/>) and when its next timer is due (UTC ticks), if it has one.</summary>
public readonly record struct ParkedInstance(string InstanceId, long? NextTimer)
{
    /// <summary>Its status (an OrchestrationStatus value) as stored, when it is parked.</summary>
    public int Status { get; init; }
}

/// <summary>The records changed by one group commit. An instance or entity appears at most once.</summary>
public sealed class CommitBatch
{
    public List<InstanceChange> Instances { get; } = new();
    public List<string> DeletedInstances { get; } = new();
    public List<EntityRecord> Entities { get; } = new();
    public List<string> DeletedEntities { get; } = new();

    /// <summary>
    /// Unfinished instances that left memory waiting only for a client (an event, a termination) or a timer, unchanged
    /// since their last commit: a store may leave them out of the next start's load (<see cref="ITaskHubStore.LoadAsync(int, CancellationToken)"/>)
    /// until the instance is written again, and then must answer their next timers (<see cref="ITaskHubStore.ReadParkedTimersAsync"/>).
    /// A store that does not keep this loads them as any other.
    /// </summary>
    public List<ParkedInstance> ParkedInstances { get; } = new();

    public bool IsEmpty => Instances.Count == 0 && DeletedInstances.Count == 0 && Entities.Count == 0 && DeletedEntities.Count == 0
        && ParkedInstances.Count == 0;
}

public sealed class InstanceChange
{
    /// <summary>The instance's new record (replaces the stored one).</summary>
    public required InstanceRecord Record { get; init; }

    /// <summary>When true, drop every stored history block of the instance before appending <see cref="Append"/>.</summary>
    public bool ReplaceHistory { get; init; }

    /// <summary>History events added since the last commit (null when none).</summary>
    public HistoryBlock? Append { get; init; }

    /// <summary>
    /// True when an earlier batch already stored this instance with the same id, name, creation time, parent and history
    /// generation, so a store may skip rewriting its index entries.
    /// </summary>
    public bool IndexUnchanged { get; init; }

    /// <summary>
    /// True when, besides <see cref="IndexUnchanged"/>, the stored status is the record's and it is not a finished
    /// one (so neither has a completion time), and the instance is not parked (<see cref="CommitBatch.ParkedInstances"/>):
    /// a store may rewrite only the record.
    /// </summary>
    public bool StatusUnchanged { get; init; }

    /// <summary>True when the instance may be parked in the store: the write unparks it (its next timer no longer counts).</summary>
    public bool Unparks { get; init; }

    /// <summary>
    /// True when, besides <see cref="IndexUnchanged"/>, the record's input is the one an earlier batch wrote with the
    /// whole row: a store that keeps the input apart from the record may leave it out of an update.
    /// </summary>
    public bool InputUnchanged { get; init; }
}

/// <summary>What <see cref="ITaskHubStore.ScanInstancesAsync"/> reads: ids after <paramref name="After"/> (exclusive),
/// starting with <paramref name="Prefix"/>, with one of <paramref name="Statuses"/> (OrchestrationStatus values; all when
/// null), and matching the fields set below (each unset one matches every record).</summary>
public sealed record InstanceScan(string? After = null, string? Prefix = null, IReadOnlyCollection<int>? Statuses = null)
{
    /// <summary>The orchestration name, compared ignoring case (ordinal).</summary>
    public string? Name { get; init; }

    /// <summary>The orchestration version, compared ignoring case (ordinal); no store indexes it.</summary>
    public string? Version { get; init; }

    /// <summary>Creation time bounds, UTC ticks, both inclusive.</summary>
    public long? CreatedFrom { get; init; }
    public long? CreatedTo { get; init; }

    /// <summary>Completion time bounds, UTC ticks, both inclusive; a record without a completion time matches neither.</summary>
    public long? CompletedFrom { get; init; }
    public long? CompletedTo { get; init; }

    /// <summary>Only instances without a parent (no sub-orchestrations).</summary>
    public bool TopLevelOnly { get; init; }

    /// <summary>
    /// A hint: few records have one of <see cref="Statuses"/>, so a store may find them through a status index and
    /// order them, rather than walk its ids in order past the others.
    /// </summary>
    public bool Selective { get; init; }

    /// <summary>True when <paramref name="record"/> has one of the statuses and matches the fields (not the id bounds).</summary>
    public bool Matches(InstanceRecord record)
    {
        if (Statuses is { Count: > 0 } statuses && !statuses.Contains(record.Status)) return false;
        if (Name is not null && !string.Equals(record.Name, Name, StringComparison.OrdinalIgnoreCase)) return false;
        if (!MatchesVersion(record)) return false;
        if (CreatedFrom is { } cf && record.CreatedAt < cf) return false;
        if (CreatedTo is { } ct && record.CreatedAt > ct) return false;
        if (CompletedFrom is { } pf && (!record.HasCompletedAt || record.CompletedAt < pf)) return false;
        if (CompletedTo is { } pt && (!record.HasCompletedAt || record.CompletedAt > pt)) return false;
        return !TopLevelOnly || !record.HasParentInstanceId;
    }

    /// <summary>True when the scan names no version or <paramref name="record"/> has it.</summary>
    public bool MatchesVersion(InstanceRecord record) =>
        Version is null || (record.HasVersion && string.Equals(record.Version, Version, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The smallest id greater than every id that starts with <paramref name="prefix"/>, in <see cref="InstanceIdOrder"/>
    /// (its last code point plus one), or null when there is none (every code point of it is the last one).
    /// </summary>
    public static string? UpperBound(string prefix)
    {
        var text = prefix.AsSpan();
        while (text.Length > 0)
        {
            bool pair = text.Length > 1 && char.IsSurrogatePair(text[^2], text[^1]);
            int codePoint = pair ? char.ConvertToUtf32(text[^2], text[^1]) : text[^1];
            text = text[..^(pair ? 2 : 1)];
            if (!pair && char.IsSurrogate((char)codePoint)) return null;
            if (codePoint == 0x10FFFF) continue;
            int next = codePoint + 1 == 0xD800 ? 0xE000 : codePoint + 1;
            return string.Concat(text, char.ConvertFromUtf32(next));
        }

        return null;
    }
}

/// <summary>
/// The order of instance ids in queries and cursors: by Unicode code point, which is the byte order of their UTF-8
/// form (SQLite's and Redis's order). It differs from ordinal UTF-16 order only for characters above U+D7FF.
/// </summary>
public sealed class InstanceIdOrder : IComparer<string>
{
    public static readonly InstanceIdOrder Instance = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;
        int common = x.AsSpan().CommonPrefixLength(y);
        if (common == x.Length || common == y.Length) return x.Length - y.Length;
        return Rank(x[common]) - Rank(y[common]);
    }

    // Surrogates (U+D800-U+DFFF) encode code points above U+FFFF: they sort after U+E000-U+FFFF.
    static int Rank(char c) => c >= 0xE000 ? c - 0x800 : c >= 0xD800 ? c + 0x2000 : c;
}

/// <summary>The finished (terminal) statuses as stored: OrchestrationStatus values.</summary>
public static class FinishedStatuses
{
    public static readonly int[] Values = Enum.GetValues<Microsoft.DurableTask.Protobuf.OrchestrationStatus>()
        .Where(Orchestration.Statuses.IsTerminal).Select(s => (int)s).ToArray();

    /// <summary>The other statuses: those of unfinished instances.</summary>
    public static readonly int[] Unfinished = Enum.GetValues<Microsoft.DurableTask.Protobuf.OrchestrationStatus>()
        .Where(s => !Orchestration.Statuses.IsTerminal(s)).Select(s => (int)s).ToArray();

    public static bool Contains(int status) => Array.IndexOf(Values, status) >= 0;

    /// <summary>The values as a SQL list, e.g. <c>1, 3, 4, 5</c>.</summary>
    public static readonly string SqlList = string.Join(", ", Values);
}

public sealed class StoreCorruptedException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Helpers for stores that keep an instance's input apart from its record.</summary>
public static class InstanceRecordExtensions
{
    /// <summary>The record's bytes without its input (which the store keeps apart); the record is left as it was.</summary>
    public static byte[] WithoutInput(this InstanceRecord record)
    {
        if (!record.HasInput) return record.ToByteArray();
        string input = record.Input;
        record.ClearInput();
        try
        {
            return record.ToByteArray();
        }
        finally
        {
            record.Input = input;
        }
    }
}
