using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>Records shaped like the scheduler's: a five-city sequence orchestration part-way through, and a counter entity.</summary>
public static class StoreTestData
{
    public static readonly DateTime Epoch = new(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc);

    static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

    public static InstanceRecord Instance(string id, int step = 0, string name = "HelloCities", string? parent = null, string? input = null)
    {
        var created = Epoch.AddSeconds(id.GetHashCode() & 0xffff);
        var record = new InstanceRecord
        {
            FormatVersion = 1,
            InstanceId = id,
            Name = name,
            ExecutionId = Guid.NewGuid().ToString("N"),
            Status = step >= Cities.Length ? (int)P.OrchestrationStatus.Completed : (int)P.OrchestrationStatus.Running,
            CreatedAt = created.Ticks,
            LastUpdatedAt = created.AddMilliseconds(50 * step).Ticks,
            Input = input ?? "\"Tokyo\"",
            TraceContext = new P.OrchestrationTraceContext
            {
                SpanID = "0123456789abcdef",
                SpanStartTime = Timestamp.FromDateTime(created),
            }.ToByteString(),
            HistoryEventCount = 4 * step + 2,
        };
        record.Tags["app"] = "storage-tests";
        if (parent is not null) record.ParentInstanceId = parent;
        if (step >= Cities.Length)
        {
            record.CompletedAt = created.AddMilliseconds(50 * step).Ticks;
            record.Output = "[" + string.Join(",", Cities.Select(c => $"\"Hello, {c}!\"")) + "]";
        }
        else
        {
            record.Inbox.Add(Event(step * 2, created, e => e.TaskCompleted = new P.TaskCompletedEvent
            {
                TaskScheduledId = step,
                Result = $"\"Hello, {Cities[step]}!\"",
            }).ToByteString());
        }

        return record;
    }

    /// <summary>The events one episode of the sequence appends: started, a result, the next activity, completed.</summary>
    public static HistoryBlock Block(string id, int step, int generation = 0, string? result = null)
    {
        var at = Epoch.AddMilliseconds(50 * step);
        var block = new HistoryBlock { FormatVersion = 1, Generation = generation };
        block.Events.Add(Event(-1, at, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()).ToByteString());
        if (step == 0)
        {
            block.Events.Add(Event(-1, at, e => e.ExecutionStarted = new P.ExecutionStartedEvent
            {
                Name = "HelloCities",
                Input = "\"Tokyo\"",
                OrchestrationInstance = new P.OrchestrationInstance { InstanceId = id, ExecutionId = Guid.NewGuid().ToString("N") },
                ParentTraceContext = new P.TraceContext { TraceParent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01" },
            }).ToByteString());
        }
        else
        {
            block.Events.Add(Event(-1, at, e => e.TaskCompleted = new P.TaskCompletedEvent
            {
                TaskScheduledId = step - 1,
                Result = result ?? $"\"Hello, {Cities[(step - 1) % Cities.Length]}!\"",
            }).ToByteString());
        }

        block.Events.Add(Event(step, at, e => e.TaskScheduled = new P.TaskScheduledEvent
        {
            Name = "SayHello",
            Input = $"\"{Cities[step % Cities.Length]}\"",
            ParentTraceContext = new P.TraceContext { TraceParent = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01" },
        }).ToByteString());
        block.Events.Add(Event(-1, at, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent()).ToByteString());
        return block;
    }

    public static EntityRecord Entity(string id, int value = 1, string? state = null)
    {
        var entity = new EntityRecord
        {
            FormatVersion = 1,
            InstanceId = id,
            State = state ?? value.ToString(),
            LastModified = Epoch.AddSeconds(value).Ticks,
        };
        entity.RecentRequestIds.Add(Guid.NewGuid().ToString());
        entity.Queue.Add(new EntityMessageRecord
        {
            Event = Event(-1, Epoch, e => e.EventRaised = new P.EventRaisedEvent { Name = "op", Input = "{\"add\":1}" }).ToByteString(),
            ParentInstanceId = "caller",
            ParentExecutionId = "exec",
        });
        return entity;
    }

    public static InstanceChange Change(InstanceRecord record, HistoryBlock? append = null, bool replaceHistory = false) =>
        new() { Record = record, Append = append, ReplaceHistory = replaceHistory };

    public static CommitBatch Batch(params InstanceChange[] changes)
    {
        var batch = new CommitBatch();
        batch.Instances.AddRange(changes);
        return batch;
    }

    static P.HistoryEvent Event(int eventId, DateTime at, Action<P.HistoryEvent> fill)
    {
        var e = new P.HistoryEvent { EventId = eventId, Timestamp = Timestamp.FromDateTime(at) };
        fill(e);
        return e;
    }
}
