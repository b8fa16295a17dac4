using DurableTask.Scheduler.Storage.Records;

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
    Task<StoredHub> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Atomically applies one batch.</summary>
    Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken);

    /// <summary>Reads one instance's history (all blocks of its current generation), for instances whose history is not in memory.</summary>
    Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken);

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
    public List<EntityRecord> Entities { get; } = new();
}

public sealed class StoredInstance
{
    public required InstanceRecord Record { get; init; }

    /// <summary>History blocks of the record's current generation, in commit order.</summary>
    public List<HistoryBlock> History { get; } = new();
}

/// <summary>The records changed by one group commit. An instance or entity appears at most once.</summary>
public sealed class CommitBatch
{
    public List<InstanceChange> Instances { get; } = new();
    public List<string> DeletedInstances { get; } = new();
    public List<EntityRecord> Entities { get; } = new();
    public List<string> DeletedEntities { get; } = new();

    public bool IsEmpty => Instances.Count == 0 && DeletedInstances.Count == 0 && Entities.Count == 0 && DeletedEntities.Count == 0;
}

public sealed class InstanceChange
{
    /// <summary>The instance's new record (replaces the stored one).</summary>
    public required InstanceRecord Record { get; init; }

    /// <summary>When true, drop every stored history block of the instance before appending <see cref="Append"/>.</summary>
    public bool ReplaceHistory { get; init; }

    /// <summary>History events added since the last commit (null when none).</summary>
    public HistoryBlock? Append { get; init; }
}

public sealed class StoreCorruptedException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
