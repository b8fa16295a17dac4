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

    /// <summary>Brings an instance that is only in the store back into memory (and keeps one that is in memory there for a while).</summary>
    public ValueTask EnsureLoadedAsync(string instanceId, CancellationToken cancellationToken = default) =>
        _instances.Spilled ? LoadAsync(instanceId, cancellationToken) : ValueTask.CompletedTask;

    async ValueTask LoadAsync(string instanceId, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            var (where, detached, departures) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (_instances.TryGet(instanceId, out var present))
                {
                    present.PinnedUntil = Now + LoadedPin;
                    return;
                }

                if (where != Presence.InStore) return;
                // Something left memory since the read: what was read may be older than that. Read again.
                if (_instances.Departures != departures) continue;

                var instance = detached!;
                AddInstance(instance);
                if (instance.IsTerminal)
                {
                    instance.PackHistory();
                    _instances.FinishedLoaded(instance);
                }
                else
                {
                    ResumeOwedWork(instance);
                    Pump();
                }

                instance.PinnedUntil = Now + LoadedPin;
                return;
            }
        }
    }

    enum Presence { Nowhere, InMemory, InStore }

    /// <summary>
    /// Reads an instance that is only in the store without bringing it into memory (for reads). Says
    /// <see cref="Presence.InMemory"/> when memory has it, so the caller reads it there.
    /// </summary>
    async ValueTask<(Presence Where, Instance? Detached, long Departures)> ReadFromStoreAsync(string instanceId, CancellationToken cancellationToken)
    {
        for (int attempt = 0; attempt < 8; attempt++)
        {
            long departures;
            lock (_gate)
            {
                if (_instances.Contains(instanceId)) return (Presence.InMemory, null, 0);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null, 0);
                departures = _instances.Departures;
            }

            StoredInstance? stored;
            try
            {
                stored = await _commits.Store.ReadInstanceAsync(instanceId, cancellationToken).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                throw new TaskHubException(TaskHubErrorKind.StoreUnavailable,
                    $"the store of task hub '{Name}' is unavailable; instance '{instanceId}' cannot be read ({ex.Message})");
            }

            lock (_gate)
            {
                if (_instances.Contains(instanceId)) return (Presence.InMemory, null, 0);
                if (_commits.IsDeleting(instanceId)) return (Presence.Nowhere, null, 0);
                if (_instances.Departures != departures) continue;
                return stored is null ? (Presence.Nowhere, null, 0) : (Presence.InStore, FromStored(stored), departures);
            }
        }

        return (Presence.Nowhere, null, 0);
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

    /// <summary>Reads back the instances an orchestrator's completion may replace or rewind, before it is applied.</summary>
    public async ValueTask PreloadAsync(OrchestratorResponse response, CancellationToken cancellationToken)
    {
        if (!_instances.Spilled) return;
        foreach (var action in response.Actions)
        {
            if (action.CreateSubOrchestration is { } create && create.InstanceId.Length > 0)
            {
                await EnsureLoadedAsync(create.InstanceId, cancellationToken).ConfigureAwait(false);
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
            var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
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
            var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
            if (where == Presence.InStore)
            {
                return string.IsNullOrEmpty(executionId) || executionId == detached!.ExecutionId ? detached!.CopyHistory() : null;
            }

            if (where == Presence.Nowhere) return null;
        }
    }

    /// <summary>A finished instance that is only in the store, for a wait that can answer at once; null otherwise.</summary>
    async ValueTask<OrchestrationState?> FinishedInStoreAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken)
    {
        if (!_instances.Spilled) return null;
        var (where, detached, _) = await ReadFromStoreAsync(instanceId, cancellationToken).ConfigureAwait(false);
        return where == Presence.InStore && detached!.IsTerminal ? detached.ToState(includePayloads) : null;
    }
}
