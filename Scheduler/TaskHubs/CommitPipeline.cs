using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Storage;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What the commit pipeline asks of the hub it commits for. Called under the hub's lock unless noted.</summary>
interface ICommitOwner
{
    /// <summary>True once the hub stopped: the loop writes what is pending and ends.</summary>
    bool Stopped { get; }

    /// <summary>Why the hub may no longer commit (its hub lease is gone); null while it may. Read without the lock.</summary>
    string? FencedReason { get; }

    /// <summary>The store refused a commit: another replica owns the hub. Called without the lock.</summary>
    void Fence(string reason);

    /// <summary>A batch is durable (<see cref="CommitPipeline.CommittedEpoch"/> is its epoch): what waited for it may go.</summary>
    void Committed();

    /// <summary>Nothing to commit for a while: a chance to let go of memory.</summary>
    void Idle();
}

/// <summary>
/// Group commit for one task hub: changes accumulate as dirty instances and entities; one loop snapshots them under
/// the hub's lock (<see cref="StoredForms"/>) and writes the batch outside it, while new changes gather for the next
/// batch. Each batch has an epoch: work that follows from a change is handed out once its epoch is durable
/// (<see cref="IsCommitted"/>), and callers answer after <see cref="FlushAsync"/>. Every member but the loop's own
/// steps and <see cref="FlushAsync"/> is called under the hub's lock.
/// </summary>
sealed class CommitPipeline(Lock gate, ICommitOwner owner, string hub, TimeSpan commitTimeout, ILogger logger)
{
    static readonly TimeSpan StoreProbeInterval = TimeSpan.FromSeconds(1);

    ITaskHubStore _store = new Storage.InMemory.InMemoryStore();
    bool _durable;

    readonly HashSet<Instance> _dirtyInstances = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> _deletedInstances = new(StringComparer.Ordinal);
    readonly HashSet<Entity> _dirtyEntities = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> _deletedEntities = new(StringComparer.Ordinal);

    /// <summary>Unfinished instances that wait only for a client, a child or a timer, to be marked so in the store (<see cref="CommitBatch.ParkedInstances"/>).</summary>
    readonly Dictionary<string, ParkedInstance> _parked = new(StringComparer.Ordinal);

    /// <summary>Instance ids deleted in the batch being written: still in the store until it is durable.</summary>
    readonly HashSet<string> _deletesCommitting = new(StringComparer.Ordinal);

    /// <summary>Epoch of the batch now gathering changes, and of the last batch known durable.</summary>
    long _epoch = 1;
    long _committedEpoch;

    CommitCompletion _pendingCommit = new();
    CommitCompletion? _runningCommit;
    readonly SemaphoreSlim _commitRequested = new(0);
    bool _commitRequestPending;
    Task? _loop;
    volatile bool _storeHealthy = true;
    Func<Task, Task>? _waitForCommit;

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

    public ITaskHubStore Store => _store;

    /// <summary>False with the in-memory store: nothing is written, and every change counts as committed at once.</summary>
    public bool Durable => _durable;

    public bool StoreHealthy => _storeHealthy;

    /// <summary>The epoch of the batch now gathering changes.</summary>
    public long Epoch => _epoch;

    /// <summary>The epoch of the last batch known durable.</summary>
    public long CommittedEpoch => _committedEpoch;

    /// <summary>The loop, once started; it ends after the hub stopped and the last batch was written.</summary>
    public Task? Loop => _loop;

    /// <summary>Uses <paramref name="store"/> from now on (before the loop starts).</summary>
    public void Attach(ITaskHubStore store)
    {
        _store = store;
        _durable = store.IsDurable;
        _committedEpoch = 0;
    }

    /// <summary>Starts the loop of a durable store. A fault in it is a bug: it is logged, and the store reported unhealthy.</summary>
    public void Start()
    {
        if (!_durable) return;
        _loop = Task.Run(RunAsync);
        _ = _loop.ContinueWith(t =>
        {
            Logs.CommitLoopFailed(logger, hub, t.Exception!.GetBaseException());
            _storeHealthy = false;
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Wakes the loop, so a stopped or fenced hub's loop sees it and ends.</summary>
    public void Wake() => _commitRequested.Release();

    /// <summary>True when work readied in <paramref name="epoch"/> may be handed out (its batch is durable).</summary>
    public bool IsCommitted(long epoch) => !_durable || epoch <= _committedEpoch;

    /// <summary>True when the store holds the instance as it is now: no change of it is pending or being written.</summary>
    public bool IsStored(Instance instance) => instance.DirtyEpoch <= _committedEpoch && !_dirtyInstances.Contains(instance);

    /// <summary>True while a delete of the instance is gathering or being written: the store may still hold it.</summary>
    public bool IsDeleting(string instanceId) => _deletedInstances.Contains(instanceId) || _deletesCommitting.Contains(instanceId);

    /// <summary>True while a delete of the instance is gathering in the next batch.</summary>
    public bool IsDeletePending(string instanceId) => _deletedInstances.Contains(instanceId);

    public void MarkDirty(Instance instance)
    {
        if (!_durable) return;
        instance.DirtyEpoch = _epoch;
        _dirtyInstances.Add(instance);
        _deletedInstances.Remove(instance.InstanceId);
        if (_parked.Count > 0) _parked.Remove(instance.InstanceId);
        RequestCommit();
    }

    public void MarkDeleted(Instance instance)
    {
        if (!_durable) return;
        _dirtyInstances.Remove(instance);
        _deletedInstances.Add(instance.InstanceId);
        if (_parked.Count > 0) _parked.Remove(instance.InstanceId);
        RequestCommit();
    }

    /// <summary>An unfinished instance, stored as it is, waits only for a client, a child or a timer (in memory or not).</summary>
    public void MarkParked(ParkedInstance parked)
    {
        if (!_durable) return;
        _parked[parked.InstanceId] = parked;
        RequestCommit();
    }

    /// <summary>Deletes an instance that is only in the store.</summary>
    public void MarkDeleted(string instanceId)
    {
        if (!_durable) return;
        _deletedInstances.Add(instanceId);
        RequestCommit();
    }

    public void MarkDirty(Entity entity)
    {
        if (!_durable) return;
        entity.DirtyEpoch = _epoch;
        _dirtyEntities.Add(entity);
        _deletedEntities.Remove(entity.InstanceId);
        RequestCommit();
    }

    public void MarkDeleted(Entity entity)
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

    bool HasPendingChanges => _dirtyInstances.Count > 0 || _deletedInstances.Count > 0 || _dirtyEntities.Count > 0 || _deletedEntities.Count > 0
        || _parked.Count > 0;

    /// <summary>Completes once every change made so far is durable. Fails with StoreUnavailable if the store stays down. Takes the lock.</summary>
    public Task FlushAsync()
    {
        if (!_durable) return Task.CompletedTask;
        lock (gate)
        {
            var completion = HasPendingChanges ? _pendingCommit : _runningCommit;
            if (completion is null) return Task.CompletedTask;
            return completion.Task.IsCompleted ? completion.Task : completion.Bounded(_waitForCommit ??= WaitForCommit);
        }
    }

    async Task WaitForCommit(Task commit)
    {
        try
        {
            await commit.WaitAsync(commitTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                $"the store of task hub '{hub}' did not confirm the change within {commitTimeout.TotalSeconds:0} s; it is kept in memory and retried");
        }
    }

    /// <summary>
    /// Fails every wait for a pending or running batch with <paramref name="error"/> (the hub was fenced). Called
    /// without the lock, after the hub marked itself fenced under it.
    /// </summary>
    public void FailWaits(Exception error)
    {
        CommitCompletion pending;
        CommitCompletion? running;
        lock (gate)
        {
            pending = _pendingCommit;
            running = _runningCommit;
        }

        Observe(pending, error);
        if (running is not null) Observe(running, error);

        static void Observe(CommitCompletion completion, Exception error)
        {
            if (completion.TrySetException(error)) _ = completion.Task.Exception;
        }
    }

    async Task RunAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            if (owner.FencedReason is not null) return;
            if (!owner.Stopped && !await _commitRequested.WaitAsync(StoreProbeInterval).ConfigureAwait(false))
            {
                // Idle: make sure the store is still there, so health and writes reflect an outage before a commit fails,
                // and let finished instances whose pin expired leave memory.
                await ProbeStoreAsync().ConfigureAwait(false);
                lock (gate) owner.Idle();
                continue;
            }

            // Yield once before taking the batch, so the calls being handled right now add their changes to it: under
            // load most batches would otherwise hold a single change (one transaction and one wake-up each).
            if (!owner.Stopped) await Task.Yield();

            CommitBatch batch;
            long epoch;
            CommitCompletion completion;
            lock (gate)
            {
                _commitRequestPending = false;
                if (owner.Stopped && !HasPendingChanges) return;
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
                    using (var span = SchedulerTelemetry.StartCommit(hub, batch))
                    {
                        await _store.CommitAsync(batch, CancellationToken.None).ConfigureAwait(false);
                    }

                    SchedulerTelemetry.RecordCommit(batch, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                    if (!_storeHealthy) Logs.StoreRecovered(logger, hub);
                    _storeHealthy = true;
                    backoff = TimeSpan.FromMilliseconds(100);
                    break;
                }
                catch (StoreFencedException ex)
                {
                    owner.Fence(ex.Message);
                    return;
                }
                catch (Exception ex)
                {
                    if (owner.FencedReason is not null) return;
                    if (_storeHealthy) Logs.CommitFailed(logger, hub, ex);
                    _storeHealthy = false;
                    await Task.Delay(backoff).ConfigureAwait(false);
                    backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, 2000));
                }
            }

            lock (gate)
            {
                _committedEpoch = epoch;
                if (ReferenceEquals(_runningCommit, completion)) _runningCommit = null;
                _deletesCommitting.Clear();
                owner.Committed();
            }

            completion.TrySetResult();
        }
    }

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
        if (healthy) Logs.StoreRecovered(logger, hub);
        else Logs.StoreProbeFailed(logger, hub);
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
        batch.ParkedInstances.AddRange(_parked.Values);
        _parked.Clear();
        _deletedInstances.Clear();
        _dirtyInstances.Clear();
        _deletedEntities.Clear();
        _dirtyEntities.Clear();
        return batch;
    }
}
