using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Instances that are only in the store (see <see cref="InstanceCache"/>): an operation on one reads it back first
/// (<see cref="EnsureLoadedAsync"/>), and a read of one answers from the store without bringing it back.
/// </summary>
public sealed partial class TaskHub : IResidencyOwner
{
    /// <summary>An instance read back from the store stays at least this long before it may be evicted again.</summary>
    static readonly TimeSpan LoadedPin = TimeSpan.FromSeconds(10);

    bool IResidencyOwner.MayEvict(Instance instance, DateTime now) =>
        _commits.IsStored(instance) && instance.InFlight is null && !instance.Queued && instance.InboxCount == 0
        && instance.PinnedUntil <= now && !_waiters.ContainsKey(instance.InstanceId);

    WaitingResidency IResidencyOwner.MayEvictWaiting(Instance instance, DateTime now, out DateTime? nextTimer)
    {
        nextTimer = null;
        if (!((IResidencyOwner)this).MayEvict(instance, now) || instance.WakeTimerSet) return WaitingResidency.Busy;
        // A held lock is something the hub itself moves on; so is everything the history still waits for, except what
        // comes from clients and timers (a timer reads its instance back when it is due). A scheduled start is a timer.
        if (_locksByOwner.ContainsKey(instance.InstanceId)) return WaitingResidency.Working;
        if (instance.DeferredStart is not null)
        {
            if (instance.HasStarted) return WaitingResidency.Working;
            nextTimer = instance.ScheduledStartAt ?? now;
            return WaitingResidency.Evictable;
        }

        return OrchestrationStateMachine.MayWaitOutOfMemory(instance, out nextTimer) ? WaitingResidency.Evictable : WaitingResidency.Working;
    }

    /// <summary>
    /// Reads an instance back because its timer is due (it arms its timers again); retried while the store is down.
    /// Called under the lock, from a due timer: the read runs on the thread pool, not under the lock.
    /// </summary>
    void LoadWhenDue(string instanceId) => _ = Task.Run(() => LoadWhenDueAsync(instanceId));

    async Task LoadWhenDueAsync(string instanceId)
    {
        try
        {
            await LoadAsync(instanceId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TaskHubException)
        {
            lock (_gate)
            {
                if (!_stopped) Schedule(Now + TimeSpan.FromSeconds(1), () => LoadWhenDue(instanceId));
            }
        }
    }

    /// <summary>How far ahead the timers of instances parked in the store are read into memory.</summary>
    static readonly TimeSpan ParkedTimerHorizon = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Arms the timers of the instances parked in the store (left out of the start) that are due after
    /// <paramref name="after"/> up to a horizon from now, then again before that horizon passes. A parked instance is
    /// read back when its timer is due; one that came due while the scheduler was down is read back at once.
    /// </summary>
    async Task ArmParkedTimersAsync(long? after)
    {
        long until = (Now + ParkedTimerHorizon).Ticks;
        IReadOnlyList<ParkedInstance> due;
        try
        {
            due = await _commits.Store.ReadParkedTimersAsync(after, until, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            lock (_gate)
            {
                if (!_stopped) Schedule(Now + TimeSpan.FromSeconds(1), () => ArmParkedTimersLater(after));
            }

            return;
        }

        lock (_gate)
        {
            if (_stopped) return;
            foreach (var parked in due)
            {
                string id = parked.InstanceId;
                Schedule(new DateTime(parked.NextTimer ?? 0, DateTimeKind.Utc), () =>
                {
                    if (!_instances.Contains(id)) LoadWhenDue(id);
                });
            }

            // The next read starts where this one ended, a little before the horizon.
            Schedule(new DateTime(until, DateTimeKind.Utc) - ParkedTimerHorizon / 5, () => ArmParkedTimersLater(until));
        }
    }

    /// <summary>Called under the lock, from a due timer: the store is read on the thread pool, not under the lock.</summary>
    void ArmParkedTimersLater(long? after) => _ = Task.Run(() => ArmParkedTimersAsync(after));

    /// <summary>Brings an instance that is only in the store back into memory (and keeps one that is in memory there for a while).</summary>
    public ValueTask EnsureLoadedAsync(string instanceId, CancellationToken cancellationToken = default) =>
        _instances.Spilled ? LoadAsync(instanceId, cancellationToken) : ValueTask.CompletedTask;

    async ValueTask LoadAsync(string instanceId, CancellationToken cancellationToken) =>
        await ReadFromStoreAsync(instanceId, cancellationToken, adopt: true).ConfigureAwait(false);

    /// <summary>Makes an instance read from the store resident again, with the work it is owed. Runs under the lock.</summary>
    void Adopt(Instance instance)
    {
        // It may have been parked in the store when it left memory: its next write unparks it.
        instance.StoreParked = !instance.IsTerminal;
        AddInstance(instance);
        _instances.Loaded(instance);
        if (instance.DeferredStart is { } start) ScheduleDeferredStart(instance, start, instance.ScheduledStartAt ?? Now);
        if (instance.IsTerminal)
        {
            instance.PackHistory();
        }
        else
        {
            ResumeOwedWork(instance);
            Pump();
        }

        instance.PinnedUntil = Now + LoadedPin;
    }

    async Task DeliverWhenLoadedAsync(string instanceId, HistoryEvent message, string? executionId)
    {
        try
        {
            await LoadAsync(instanceId, CancellationToken.None).ConfigureAwait(false);
            lock (_gate)
            {
                if (!_instances.Contains(instanceId) || _stopped) return;
                Deliver(instanceId, message, executionId);
                Pump();
            }
        }
        catch (TaskHubException)
        {
            // The store is down: the message goes where an unanswered one goes, and the work that sent it is redone.
        }
    }

    enum Presence { Nowhere, InMemory, InStore }

    /// <summary>
    /// Reads an instance that is only in the store, without bringing it into memory unless <paramref name="adopt"/>
    /// (then it stays at least <see cref="LoadedPin"/>, as does one found in memory). Says
    /// <see cref="Presence.InMemory"/> when memory has it, so the caller reads it there.
    /// </summary>
    async ValueTask<(Presence Where, Instance? Detached)> ReadFromStoreAsync(string instanceId, CancellationToken cancellationToken, bool adopt = false)
    {
        for (int attempt = 0; attempt < 16; attempt++)
        {
            long since;
            lock (_gate)
            {
                if (InMemory(instanceId, adopt)) return (Presence.InMemory, null);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null);
                since = _instances.BeginRead();
            }

            StoredInstance? stored;
            try
            {
                stored = await _commits.Store.ReadInstanceAsync(instanceId, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                lock (_gate) _instances.EndRead(since, instanceId);
                throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                    $"the store of task hub '{Name}' is unavailable; instance '{instanceId}' cannot be read ({ex.Message})");
            }
            catch
            {
                lock (_gate) _instances.EndRead(since, instanceId);
                throw;
            }

            lock (_gate)
            {
                bool departed = _instances.EndRead(since, instanceId);
                if (InMemory(instanceId, adopt)) return (Presence.InMemory, null);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null);
                // It came into memory, changed and left again while it was read: what was read may be older. Read again.
                if (departed) continue;
                if (stored is null) return (Presence.Nowhere, null);
                var instance = FromStored(stored);
                if (adopt) Adopt(instance);
                return (Presence.InStore, instance);
            }
        }

        throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
            $"instance '{instanceId}' of task hub '{Name}' kept changing while it was read from the store; retry");
    }

    bool InMemory(string instanceId, bool pin)
    {
        if (!_instances.TryGet(instanceId, out var present)) return false;
        if (pin) present.PinnedUntil = Now + LoadedPin;
        return true;
    }

    /// <summary>Loads an instance and, through its history, its sub-orchestrations (for recursive purge and rewind).</summary>
    async ValueTask EnsureTreeLoadedAsync(string instanceId, CancellationToken cancellationToken, int depth = 0)
    {
        if (!_instances.Spilled) return;
        await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        if (depth >= 32) return;
        List<string> children;
        lock (_gate)
        {
            if (!_instances.TryGet(instanceId, out var instance)) return;
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

    /// <summary>
    /// Reads back an instance's parent when it is only in the store, so that the instance's end, which tells the parent,
    /// is applied with the parent in memory and committed with it. The instance is read back first.
    /// </summary>
    async ValueTask EnsureParentLoadedAsync(string instanceId, CancellationToken cancellationToken)
    {
        if (!_instances.UnfinishedSpilled) return;
        await EnsureLoadedAsync(instanceId, cancellationToken).ConfigureAwait(false);
        string? parent;
        lock (_gate)
        {
            parent = _instances.TryGet(instanceId, out var instance) && !instance.IsTerminal
                ? instance.StartEvent?.ParentInstance?.OrchestrationInstance?.InstanceId
                : null;
        }

        if (!string.IsNullOrEmpty(parent)) await EnsureLoadedAsync(parent, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads back the instances an orchestrator's completion may replace, rewind or tell, before it is applied: among
    /// them the parent of an instance that ends.
    /// </summary>
    public async ValueTask PreloadAsync(OrchestratorResponse response, CancellationToken cancellationToken)
    {
        if (!_instances.Spilled) return;
        foreach (var action in response.Actions)
        {
            if (action.CompleteOrchestration is { OrchestrationStatus: not OrchestrationStatus.ContinuedAsNew })
                await EnsureParentLoadedAsync(response.InstanceId, cancellationToken).ConfigureAwait(false);

            if (action.CreateSubOrchestration is { } create && create.InstanceId.Length > 0)
            {
                await EnsureLoadedAsync(create.InstanceId, cancellationToken).ConfigureAwait(false);
            }
            else if (action.SendEvent is { Instance.InstanceId: { Length: > 0 } target } && !target.StartsWith('@'))
            {
                await EnsureLoadedAsync(target, cancellationToken).ConfigureAwait(false);
            }
            else if (action.CompleteOrchestration is { OrchestrationStatus: OrchestrationStatus.Terminated })
            {
                // A recursive termination ends the sub-orchestrations too.
                await EnsureTreeLoadedAsync(response.InstanceId, cancellationToken).ConfigureAwait(false);
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
        if (!_instances.Spilled) return;
        foreach (var action in result.Actions)
        {
            if (action.StartNewOrchestration is { InstanceId.Length: > 0 } start)
                await EnsureLoadedAsync(start.InstanceId, cancellationToken).ConfigureAwait(false);
        }
    }

    // ---- Operations that may need an instance that is only in the store ----

    public async ValueTask<OrchestrationState?> GetStateAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var state = GetState(instanceId, includePayloads);
            if (state is not null || !_instances.Spilled || attempt == 3) return state;
            var (where, detached) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            if (where == Presence.InStore) return detached!.ToState(includePayloads);
            if (where == Presence.Nowhere) return null;
        }
    }

    public async ValueTask<List<HistoryEvent>?> GetHistoryAsync(string instanceId, string? executionId, CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var history = GetHistory(instanceId, executionId);
            if (history is not null || !_instances.Spilled || attempt == 3) return history;
            var (where, detached) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            if (where == Presence.InStore)
            {
                return string.IsNullOrEmpty(executionId) || executionId == detached!.ExecutionId ? detached!.CopyHistory() : null;
            }

            if (where == Presence.Nowhere) return null;
        }
    }

    /// <summary>An instance that is only in the store, in a state a wait can answer at once with; null otherwise.</summary>
    async ValueTask<OrchestrationState?> SettledInStoreAsync(string instanceId, bool untilCompletion, bool includePayloads, CancellationToken cancellationToken)
    {
        if (!_instances.Spilled) return null;
        var (where, detached) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
        if (where != Presence.InStore) return null;
        bool settled = untilCompletion ? detached!.IsTerminal : detached!.Status != OrchestrationStatus.Pending;
        return settled ? detached.ToState(includePayloads) : null;
    }
}
