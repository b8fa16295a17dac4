using DurableTask.Scheduler.Storage.Records;

namespace DurableTask.Scheduler.Storage.InMemory;

/// <summary>The emulator's store: state lives only in the scheduler's memory and is gone after a restart.</summary>
public sealed class InMemoryStoreProvider : IStoreProvider
{
    public string Name => "memory";

    public ITaskHubStore Open(string taskHub) => new InMemoryStore();

    public Task<IReadOnlyList<string>> ListTaskHubsAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<string>>([]);
}

public sealed class InMemoryStore : ITaskHubStore
{
    public bool IsDurable => false;

    public Task<StoredHub> LoadAsync(int maxFinishedInstances, CancellationToken cancellationToken) => Task.FromResult(new StoredHub());

    public Task<StoredInstance?> ReadInstanceAsync(string instanceId, CancellationToken cancellationToken) => Task.FromResult<StoredInstance?>(null);

    public IAsyncEnumerable<InstanceRecord> ScanInstancesAsync(InstanceScan scan, CancellationToken cancellationToken) =>
        AsyncEnumerable.Empty<InstanceRecord>();

    public Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<HistoryBlock>>([]);

    public Task<bool> IsHealthyAsync(CancellationToken cancellationToken) => Task.FromResult(true);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
