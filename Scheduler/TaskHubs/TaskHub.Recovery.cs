using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Loading a hub from its store and resuming: inboxes, scheduled starts, activities and timers still owed
/// (derived from each history), entity queues, locks and scheduled signals.
/// </summary>
public sealed partial class TaskHub
{
    /// <summary>Attaches the store, loads what it holds and starts the commit loop.</summary>
    public async Task OpenAsync(ITaskHubStore store, CancellationToken cancellationToken)
    {
        int cap = store.IsDurable ? Math.Max(0, _options.MaxFinishedInstancesInMemory) : int.MaxValue;
        var stored = await store.LoadAsync(cap, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _commits.Attach(store);
            foreach (var item in stored.Instances) Restore(item);
            foreach (var record in stored.Entities) Restore(record);
            foreach (var instance in _instances.Resident) ResumeOwedWork(instance);
            foreach (var instance in _instances.Resident.OrderBy(i => i.CompletedAt ?? i.LastUpdatedAt))
            {
                if (instance.IsTerminal) _instances.TrackFinished(instance);
                else _instances.Touched(instance);
            }

            _instances.SetInStore(stored.InStore);
            foreach (var entity in _entities.Values.ToList()) ProcessEntity(entity);
            Pump();
        }

        _commits.Start();
        if (_instances.UnfinishedSpilled) await ArmParkedTimersAsync(null).ConfigureAwait(false);
    }

    void Restore(StoredInstance stored)
    {
        var instance = FromStored(stored);
        AddInstance(instance);
        if (instance.DeferredStart is { } start) ScheduleDeferredStart(instance, start, instance.ScheduledStartAt ?? Now);
    }

    /// <summary>An instance as the store keeps it, its input included: updates leave the input out while the store keeps it apart.</summary>
    Instance FromStored(StoredInstance stored)
    {
        var instance = FromRecord(stored.Record, stored.History);
        instance.InputStored = stored.InputStoredApart;
        return instance;
    }

    /// <summary>Rebuilds an instance from its stored record (see <see cref="StoredForms.ToInstance"/>).</summary>
    Instance FromRecord(InstanceRecord r, IReadOnlyList<HistoryBlock>? history) => StoredForms.ToInstance(r, history, Name, _names);

    /// <summary>Re-creates the activities and timers an instance's history shows as scheduled but not yet answered.</summary>
    void ResumeOwedWork(Instance instance)
    {
        if (instance.IsTerminal)
        {
            instance.PackHistory();
            return;
        }

        OrchestrationStateMachine.ResumeOwedWork(instance, this);
        MakeReady(instance);
    }

    void Restore(EntityRecord r)
    {
        if (r.FormatVersion > StoredForms.FormatVersion)
            throw new StoreCorruptedException($"entity '{r.InstanceId}' in task hub '{Name}' has record format {r.FormatVersion}, newer than this scheduler understands ({StoredForms.FormatVersion})");
        try
        {
            var entity = GetOrCreateEntity(r.InstanceId);
            entity.State = r.HasState ? r.State : null;
            entity.LastModified = new DateTime(r.LastModified, DateTimeKind.Utc);
            entity.LockedBy = r.HasLockedBy ? r.LockedBy : null;
            entity.LockCriticalSectionId = r.HasLockCriticalSectionId ? r.LockCriticalSectionId : null;
            if (entity.LockedBy is { } owner)
            {
                if (!_locksByOwner.TryGetValue(owner, out var held)) _locksByOwner[owner] = held = new HashSet<string>(StringComparer.Ordinal);
                held.Add(entity.InstanceId);
            }

            foreach (var m in r.Queue) entity.Queue.AddLast(StoredForms.ToMessage(m));
            foreach (var m in r.Scheduled)
            {
                var message = StoredForms.ToMessage(m);
                ScheduleEntityMessage(entity, message, m.HasDueAt ? new DateTime(m.DueAt, DateTimeKind.Utc) : Now);
            }

            if (r.RecentRequestIds.Count > 0)
            {
                entity.RecentRequestIds = new HashSet<string>(r.RecentRequestIds, StringComparer.Ordinal);
                entity.RecentRequestOrder = new Queue<string>(r.RecentRequestIds);
            }
        }
        catch (Google.Protobuf.InvalidProtocolBufferException ex)
        {
            throw new StoreCorruptedException($"the stored record of entity '{r.InstanceId}' in task hub '{Name}' is damaged: {ex.Message}", ex);
        }
    }
}
