using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Group commit: changes accumulate as dirty instances and entities; one loop snapshots them under the lock and
/// writes the batch outside it, while new changes gather for the next batch. Callers await <see cref="FlushAsync"/>
/// before they answer, and work that follows from a change is dispatched only once its batch is committed.
/// </summary>
public sealed partial class TaskHub
{
    ITaskHubStore _store = new Storage.InMemory.InMemoryStore();
    bool _durable;

    readonly HashSet<Instance> _dirtyInstances = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> _deletedInstances = new(StringComparer.Ordinal);
    readonly HashSet<Entity> _dirtyEntities = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> _deletedEntities = new(StringComparer.Ordinal);

    /// <summary>Epoch of the batch now gathering changes, and of the last batch known durable.</summary>
    long _epoch = 1;
    long _committedEpoch;

    CommitCompletion _pendingCommit = new();
    CommitCompletion? _runningCommit;
    readonly SemaphoreSlim _commitRequested = new(0);
    bool _commitRequestPending;
    Task? _commitLoop;
    volatile bool _storeHealthy = true;

    public bool StoreHealthy => _storeHealthy;

    /// <summary>
    /// One batch's commit, completed once it is durable. Its callers share one wait bounded by the commit timeout, so
    /// a batch costs one timer however many calls wait for it.
    /// </summary>
    sealed class CommitCompletion
    {
        readonly TaskCompletionSource _source = new(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? _bounded;

        public Task Task => _source.Task;
        public bool TrySetResult() => _source.TrySetResult();
        public bool TrySetException(Exception error) => _source.TrySetException(error);

        /// <summary>Called under the hub's lock.</summary>
        public Task Bounded(Func<Task, Task> bound) => _bounded ??= bound(_source.Task);
    }

    /// <summary>True when work readied in <paramref name="epoch"/> may be handed out (its batch is durable).</summary>
    bool IsCommitted(long epoch) => !_durable || epoch <= _committedEpoch;

    void MarkDirty(Instance instance)
    {
        if (!_durable) return;
        instance.DirtyEpoch = _epoch;
        _dirtyInstances.Add(instance);
        _deletedInstances.Remove(instance.InstanceId);
        RequestCommit();
    }

    void MarkDeleted(Instance instance)
    {
        if (!_durable) return;
        _dirtyInstances.Remove(instance);
        _deletedInstances.Add(instance.InstanceId);
        RequestCommit();
    }

    void MarkDirty(Entity entity)
    {
        if (!_durable) return;
        entity.DirtyEpoch = _epoch;
        _dirtyEntities.Add(entity);
        _deletedEntities.Remove(entity.InstanceId);
        RequestCommit();
    }

    void MarkDeleted(Entity entity)
    {
        if (!_durable) return;
        _dirtyEntities.Remove(entity);
        _deletedEntities.Add(entity.InstanceId);
        RequestCommit();
    }

    void RequestCommit()
    {
        if (_commitRequestPending) return;
        _commitRequestPending = true;
        _commitRequested.Release();
    }

    bool HasPendingChanges => _dirtyInstances.Count > 0 || _deletedInstances.Count > 0 || _dirtyEntities.Count > 0 || _deletedEntities.Count > 0;

    /// <summary>Completes once every change made so far is durable. Fails with StoreUnavailable if the store stays down.</summary>
    public Task FlushAsync()
    {
        if (!_durable) return Task.CompletedTask;
        lock (_gate)
        {
            var completion = HasPendingChanges ? _pendingCommit : _runningCommit;
            if (completion is null) return Task.CompletedTask;
            return completion.Task.IsCompleted ? completion.Task : completion.Bounded(_waitForCommit ??= WaitForCommit);
        }
    }

    Func<Task, Task>? _waitForCommit;

    async Task WaitForCommit(Task commit)
    {
        try
        {
            await commit.WaitAsync(_options.CommitTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                $"the store of task hub '{Name}' did not confirm the change within {_options.CommitTimeout.TotalSeconds:0} s; it is kept in memory and retried");
        }
    }

    /// <summary>Fails fast while the store is down, before anything is changed.</summary>
    public void EnsureWritable()
    {
        if (_fencedReason is not null) throw MovedError();
        if (_durable && !_storeHealthy)
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
        CommitCompletion pending;
        CommitCompletion? running;
        List<Waiter> waiters = new();
        lock (_gate)
        {
            if (_fencedReason is not null) return;
            _fencedReason = reason;
            _stopped = true;
            _due.Stop();
            foreach (var worker in _workers) worker.Outbox.Writer.TryComplete();
            foreach (var list in _waiters.Values) waiters.AddRange(list);
            _waiters.Clear();
            _startWaiters = 0;
            pending = _pendingCommit;
            running = _runningCommit;
            _commitRequested.Release();
        }

        Logs.HubFenced(_logger, Name, reason);
        var error = MovedError();
        foreach (var waiter in waiters) waiter.Completion.TrySetException(error);
        Observe(pending, error);
        if (running is not null) Observe(running, error);
        Fenced?.Invoke(this);

        static void Observe(CommitCompletion completion, Exception error)
        {
            if (completion.TrySetException(error)) _ = completion.Task.Exception;
        }
    }

    async Task CommitLoopAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            if (_fencedReason is not null) return;
            if (!_stopped && !await _commitRequested.WaitAsync(StoreProbeInterval).ConfigureAwait(false))
            {
                // Idle: make sure the store is still there, so health and writes reflect an outage before a commit fails,
                // and let finished instances whose pin expired leave memory.
                await ProbeStoreAsync().ConfigureAwait(false);
                lock (_gate) EvictFinished();
                continue;
            }

            // Yield once before taking the batch, so the calls being handled right now add their changes to it: under
            // load most batches would otherwise hold a single change (one transaction and one wake-up each).
            if (!_stopped) await Task.Yield();

            CommitBatch batch;
            long epoch;
            CommitCompletion completion;
            lock (_gate)
            {
                _commitRequestPending = false;
                if (_stopped && !HasPendingChanges) return;
                batch = BuildBatch();
                epoch = _epoch++;
                completion = _pendingCommit;
                _pendingCommit = new CommitCompletion();
                _runningCommit = completion;
            }

            while (!batch.IsEmpty)
            {
                try
                {
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    using (var span = Diagnostics.SchedulerTelemetry.StartCommit(Name, batch))
                    {
                        await _store.CommitAsync(batch, CancellationToken.None).ConfigureAwait(false);
                    }

                    Diagnostics.SchedulerTelemetry.RecordCommit(batch, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                    if (!_storeHealthy) Logs.StoreRecovered(_logger, Name);
                    _storeHealthy = true;
                    backoff = TimeSpan.FromMilliseconds(100);
                    break;
                }
                catch (StoreFencedException ex)
                {
                    Fence(ex.Message);
                    return;
                }
                catch (Exception ex)
                {
                    if (_fencedReason is not null) return;
                    if (_storeHealthy) Logs.CommitFailed(_logger, Name, ex);
                    _storeHealthy = false;
                    await Task.Delay(backoff).ConfigureAwait(false);
                    backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 2000));
                }
            }

            lock (_gate)
            {
                _committedEpoch = epoch;
                if (ReferenceEquals(_runningCommit, completion)) _runningCommit = null;
                _deletesCommitting.Clear();
                EvictFinished();
                ReleaseCommitted();
                Pump();
            }

            completion.TrySetResult();
        }
    }

    static readonly TimeSpan StoreProbeInterval = TimeSpan.FromSeconds(1);

    async Task ProbeStoreAsync()
    {
        bool healthy;
        try
        {
            healthy = await _store.IsHealthyAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            healthy = false;
        }

        if (healthy == _storeHealthy) return;
        if (healthy) Logs.StoreRecovered(_logger, Name);
        else Logs.StoreProbeFailed(_logger, Name);
        _storeHealthy = healthy;
    }

    /// <summary>Snapshots every dirty record. Runs under the lock.</summary>
    CommitBatch BuildBatch()
    {
        var batch = new CommitBatch();
        foreach (var id in _deletedInstances)
        {
            batch.DeletedInstances.Add(id);
            _deletesCommitting.Add(id);
        }

        foreach (var instance in _dirtyInstances) batch.Instances.Add(StoredForms.Snapshot(instance));
        foreach (var id in _deletedEntities) batch.DeletedEntities.Add(id);
        foreach (var entity in _dirtyEntities) batch.Entities.Add(StoredForms.Snapshot(entity));
        _deletedInstances.Clear();
        _dirtyInstances.Clear();
        _deletedEntities.Clear();
        _dirtyEntities.Clear();
        return batch;
    }
}
