using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// The hub's side of committing (see <see cref="CommitPipeline"/>): marking what changed, waiting for durability,
/// refusing writes while the store is down, and fencing when another replica took the hub over.
/// </summary>
public sealed partial class TaskHub : ICommitOwner
{
    readonly CommitPipeline _commits;

    /// <summary>False with the in-memory store, which has nowhere to write.</summary>
    bool Durable => _commits.Durable;

    public bool StoreHealthy => _commits.StoreHealthy;

    /// <summary>True when work readied in <paramref name="epoch"/> may be handed out (its batch is durable).</summary>
    bool IsCommitted(long epoch) => _commits.IsCommitted(epoch);

    void MarkDirty(Instance instance)
    {
        _commits.MarkDirty(instance);
        _instances.Touched(instance);
    }

    void MarkDeleted(Instance instance) => _commits.MarkDeleted(instance);

    void MarkDirty(Entity entity) => _commits.MarkDirty(entity);

    void MarkDeleted(Entity entity) => _commits.MarkDeleted(entity);

    /// <summary>Completes once every change made so far is durable. Fails with StoreUnavailable if the store stays down.</summary>
    public Task FlushAsync() => _commits.FlushAsync();

    bool ICommitOwner.Stopped => _stopped;

    string? ICommitOwner.FencedReason => _fencedReason;

    void ICommitOwner.Fence(string reason) => Fence(reason);

    void ICommitOwner.Committed()
    {
        _instances.Evict();
        _dispatch.ReleaseCommitted();
        Pump();
    }

    void ICommitOwner.Idle() => _instances.Evict();

    /// <summary>Fails fast while the store is down, before anything is changed.</summary>
    public void EnsureWritable()
    {
        if (_fencedReason is not null) throw MovedError();
        if (_commits.Durable && !_commits.StoreHealthy)
        {
            throw new TaskHubException(TaskHubErrorKind.StoreUnavailable, $"the store of task hub '{Name}' is unavailable; retry later");
        }
    }

    /// <summary>Why this hub object may no longer commit (its hub lease is gone); null while it may.</summary>
    volatile string? _fencedReason;

    /// <summary>Called once when the hub is fenced, so its owner can drop it.</summary>
    public Action<TaskHub>? Fenced { get; set; }

    TaskHubException MovedError() => new(TaskHubErrorKind.Moved,
        $"task hub '{Name}' moved to another scheduler replica ({_fencedReason}); retry");

    /// <summary>
    /// Stops this hub object for good without writing anything more: another replica owns the hub now and loads its
    /// state from the store. Work handed out is not completed here; the new owner hands it out again.
    /// </summary>
    public void Fence(string reason)
    {
        List<Waiter> waiters = new();
        lock (_gate)
        {
            if (_fencedReason is not null) return;
            _fencedReason = reason;
            _stopped = true;
            _due.Stop();
            _workers.CloseAll();
            foreach (var list in _waiters.Values) waiters.AddRange(list);
            _waiters.Clear();
            _startWaiters = 0;
            _commits.Wake();
        }

        Logs.HubFenced(_logger, Name, reason);
        var error = MovedError();
        foreach (var waiter in waiters) waiter.Completion.TrySetException(error);
        _commits.FailWaits(error);
        Fenced?.Invoke(this);
    }
}
