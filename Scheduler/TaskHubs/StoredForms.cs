using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Instances and entities in the form the store keeps them, both ways: the snapshot a commit writes of a changed
/// instance (its record, and only the history events the store does not hold yet) or entity, and the instance or
/// entity message rebuilt from what the store returns.
/// </summary>
public static class StoredForms
{
    /// <summary>The record format this scheduler writes; a newer one in the store is refused rather than misread.</summary>
    public const int FormatVersion = 1;

    public static InstanceChange Snapshot(Instance instance)
    {
        var record = new InstanceRecord
        {
            FormatVersion = FormatVersion,
            InstanceId = instance.InstanceId,
            Name = instance.Name,
            ExecutionId = instance.ExecutionId,
            Status = (int)instance.Status,
            CreatedAt = instance.CreatedAt.Ticks,
            LastUpdatedAt = instance.LastUpdatedAt.Ticks,
            ReplayRequested = instance.ReplayRequested,
            HistoryGeneration = instance.HistoryGeneration,
            HistoryEventCount = instance.HistoryCount,
        };
        if (instance.Version is not null) record.Version = instance.Version;
        if (instance.CompletedAt is { } completed) record.CompletedAt = completed.Ticks;
        if (instance.ScheduledStartAt is { } scheduled) record.ScheduledStartAt = scheduled.Ticks;
        if (instance.Input is not null) record.Input = instance.Input;
        if (instance.Output is not null) record.Output = instance.Output;
        if (instance.CustomStatus is not null) record.CustomStatus = instance.CustomStatus;
        if (instance.Failure is not null) record.Failure = instance.Failure.ToByteString();
        if (instance.Tags is not null) record.Tags.Add(instance.Tags);
        if (instance.ParentInstanceId is not null) record.ParentInstanceId = instance.ParentInstanceId;
        if (instance.InboxCount > 0)
            foreach (var e in instance.Inbox) record.Inbox.Add(e.ToByteString());
        if (instance.DeferredStart is not null) record.DeferredStart = instance.DeferredStart.ToByteString();
        if (instance.TraceContext is not null) record.TraceContext = instance.TraceContext.ToByteString();

        bool replace = instance.PersistedGeneration != instance.HistoryGeneration;
        var encoded = instance.Encoded;
        int from = replace ? 0 : Math.Min(instance.PersistedHistoryCount, encoded.Count);
        HistoryBlock? append = null;
        if (from < encoded.Count)
        {
            append = new HistoryBlock { FormatVersion = FormatVersion, Generation = instance.HistoryGeneration };
            // The bytes encoded when the events were appended; they never change (EncodedHistory), so no copy here.
            foreach (var bytes in encoded.EventsFrom(from)) append.Events.Add(UnsafeByteOperations.UnsafeWrap(bytes));
        }

        bool indexed = instance.InStore && !replace;
        bool unparks = instance.StoreParked;
        bool sameStatus = indexed && instance.PersistedStatus == (int)instance.Status && !instance.IsTerminal && !unparks;
        instance.StoreParked = false;
        bool inputUnchanged = indexed && instance.InputStored;
        // A change that is not an update writes the row whole, its input included.
        if (!indexed) instance.InputStored = true;
        instance.InStore = true;
        instance.PersistedStatus = (int)instance.Status;
        instance.PersistedGeneration = instance.HistoryGeneration;
        instance.PersistedHistoryCount = encoded.Count;
        if (instance.IsTerminal) instance.PackHistory();
        return new InstanceChange
        {
            Record = record, ReplaceHistory = replace, Append = append, IndexUnchanged = indexed, StatusUnchanged = sameStatus,
            InputUnchanged = inputUnchanged, Unparks = unparks,
        };
    }

    public static EntityRecord Snapshot(Entity entity)
    {
        var record = new EntityRecord
        {
            FormatVersion = FormatVersion,
            InstanceId = entity.InstanceId,
            LastModified = entity.LastModified.Ticks,
        };
        if (entity.State is not null) record.State = entity.State;
        if (entity.LockedBy is not null) record.LockedBy = entity.LockedBy;
        if (entity.LockCriticalSectionId is not null) record.LockCriticalSectionId = entity.LockCriticalSectionId;
        // A batch in flight is not done until its result is committed: it is stored at the head of the queue.
        if (entity.InFlight is { } inFlight)
        {
            foreach (var message in inFlight.Batch) record.Queue.Add(ToRecord(message, null));
        }

        foreach (var message in entity.Queue) record.Queue.Add(ToRecord(message, null));
        foreach (var (due, message) in entity.Scheduled) record.Scheduled.Add(ToRecord(message, due));
        if (entity.RecentRequestOrder is not null) record.RecentRequestIds.Add(entity.RecentRequestOrder);
        return record;
    }

    static EntityMessageRecord ToRecord(EntityMessage message, DateTime? due)
    {
        var record = new EntityMessageRecord { Event = message.Event.ToByteString(), Legacy = message.Legacy };
        if (message.ParentInstanceId is not null) record.ParentInstanceId = message.ParentInstanceId;
        if (message.ParentExecutionId is not null) record.ParentExecutionId = message.ParentExecutionId;
        if (due is { } at) record.DueAt = at.Ticks;
        return record;
    }

    /// <summary>
    /// Rebuilds an instance from its stored record and history blocks (only the summary when <paramref name="history"/>
    /// is null, for queries). Not registered with any hub.
    /// </summary>
    public static Instance ToInstance(InstanceRecord r, IReadOnlyList<HistoryBlock>? history, string hub, NameTable names)
    {
        if (r.FormatVersion > FormatVersion)
            throw new StoreCorruptedException($"instance '{r.InstanceId}' in task hub '{hub}' has record format {r.FormatVersion}, newer than this scheduler understands ({FormatVersion})");
        try
        {
            var instance = new Instance(r.InstanceId)
            {
                Name = names.Intern(r.Name),
                Version = r.HasVersion ? r.Version : null,
                ExecutionId = r.ExecutionId,
                Status = (OrchestrationStatus)r.Status,
                CreatedAt = new DateTime(r.CreatedAt, DateTimeKind.Utc),
                LastUpdatedAt = new DateTime(r.LastUpdatedAt, DateTimeKind.Utc),
                CompletedAt = r.HasCompletedAt ? new DateTime(r.CompletedAt, DateTimeKind.Utc) : null,
                ScheduledStartAt = r.HasScheduledStartAt ? new DateTime(r.ScheduledStartAt, DateTimeKind.Utc) : null,
                Input = r.HasInput ? r.Input : null,
                Output = r.HasOutput ? r.Output : null,
                CustomStatus = r.HasCustomStatus ? r.CustomStatus : null,
                Failure = r.Failure.IsEmpty ? null : TaskFailureDetails.Parser.ParseFrom(r.Failure),
                ParentInstanceId = r.HasParentInstanceId ? r.ParentInstanceId : null,
                ReplayRequested = r.ReplayRequested,
                HistoryGeneration = r.HistoryGeneration,
                PersistedGeneration = r.HistoryGeneration,
                InStore = true,
            };
            if (r.Tags.Count > 0)
            {
                instance.Tags = new Google.Protobuf.Collections.MapField<string, string>();
                instance.Tags.Add(r.Tags);
            }

            if (history is null) return instance;

            instance.TraceContext = r.TraceContext.IsEmpty ? null : OrchestrationTraceContext.Parser.ParseFrom(r.TraceContext);
            foreach (var block in history)
            {
                if (block.Generation != r.HistoryGeneration) continue;
                foreach (var bytes in block.Events) instance.AppendHistory(HistoryEvent.Parser.ParseFrom(bytes));
            }

            instance.PersistedHistoryCount = instance.HistoryCount;
            foreach (var bytes in r.Inbox) instance.Inbox.Add(HistoryEvent.Parser.ParseFrom(bytes));
            if (!r.DeferredStart.IsEmpty) instance.DeferredStart = HistoryEvent.Parser.ParseFrom(r.DeferredStart);
            return instance;
        }
        catch (Google.Protobuf.InvalidProtocolBufferException ex)
        {
            throw new StoreCorruptedException($"the stored record of instance '{r.InstanceId}' in task hub '{hub}' is damaged: {ex.Message}", ex);
        }
    }

    public static EntityMessage ToMessage(EntityMessageRecord m) => new()
    {
        Event = HistoryEvent.Parser.ParseFrom(m.Event),
        ParentInstanceId = m.HasParentInstanceId ? m.ParentInstanceId : null,
        ParentExecutionId = m.HasParentExecutionId ? m.ParentExecutionId : null,
        Legacy = m.Legacy,
    };
}
