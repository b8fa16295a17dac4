using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// The history events every episode brings, encoded straight from their parts: the <c>OrchestratorStarted</c> a work
/// item opens with, each scheduled task (from the worker's <see cref="ScheduleTaskAction"/>) and the
/// <c>OrchestratorCompleted</c> that closes the episode. They parse as the <see cref="HistoryEvent"/> the scheduler
/// would otherwise build (with its timestamp, its event and, for a task, an empty tag map) only to encode it once.
/// </summary>
static class EventWire
{
    static readonly long UnixEpochTicks = DateTime.UnixEpoch.Ticks;

    /// <summary>Size of a <see cref="HistoryEvent"/> scheduling <paramref name="task"/>; <paramref name="eventSize"/> is its event's.</summary>
    public static int TaskScheduledSize(int eventId, DateTime timestamp, ScheduleTaskAction task, out int eventSize)
    {
        eventSize = ProtoWire.StringSize(task.Name)
            + ProtoWire.StringValueSize(task.Version)
            + ProtoWire.StringValueSize(task.Input)
            + ProtoWire.MessageSize(task.ParentTraceContext)
            + ProtoWire.MapSize(TaskScheduledEvent.TagsFieldNumber, task.Tags);
        return HeaderSize(eventId, timestamp) + ProtoWire.FieldSize(HistoryEvent.TaskScheduledFieldNumber, eventSize);
    }

    public static void WriteTaskScheduled(Span<byte> span, int eventId, DateTime timestamp, ScheduleTaskAction task, int eventSize)
    {
        var writer = new ProtoWire.Writer(span);
        WriteHeader(ref writer, eventId, timestamp);
        writer.FieldHeader(HistoryEvent.TaskScheduledFieldNumber, eventSize);
        writer.String(TaskScheduledEvent.NameFieldNumber, task.Name);
        writer.StringValue(TaskScheduledEvent.VersionFieldNumber, task.Version);
        writer.StringValue(TaskScheduledEvent.InputFieldNumber, task.Input);
        writer.Message(TaskScheduledEvent.ParentTraceContextFieldNumber, task.ParentTraceContext);
        writer.Map(TaskScheduledEvent.TagsFieldNumber, task.Tags);
        Check(writer, span);
    }

    /// <summary>Size of the <see cref="HistoryEvent"/> that opens an episode (event id -1, an empty event).</summary>
    public static int OrchestratorStartedSize(DateTime timestamp) => EmptyEventSize(HistoryEvent.OrchestratorStartedFieldNumber, timestamp);

    public static void WriteOrchestratorStarted(Span<byte> span, DateTime timestamp) =>
        WriteEmptyEvent(span, HistoryEvent.OrchestratorStartedFieldNumber, timestamp);

    /// <summary>Size of the <see cref="HistoryEvent"/> that closes an episode (event id -1, an empty event).</summary>
    public static int OrchestratorCompletedSize(DateTime timestamp) => EmptyEventSize(HistoryEvent.OrchestratorCompletedFieldNumber, timestamp);

    public static void WriteOrchestratorCompleted(Span<byte> span, DateTime timestamp) =>
        WriteEmptyEvent(span, HistoryEvent.OrchestratorCompletedFieldNumber, timestamp);

    static int EmptyEventSize(int field, DateTime timestamp) => HeaderSize(-1, timestamp) + ProtoWire.FieldSize(field, 0);

    static void WriteEmptyEvent(Span<byte> span, int field, DateTime timestamp)
    {
        var writer = new ProtoWire.Writer(span);
        WriteHeader(ref writer, -1, timestamp);
        writer.FieldHeader(field, 0);
        Check(writer, span);
    }

    /// <summary>Size of the fields every event starts with: its id and its timestamp.</summary>
    static int HeaderSize(int eventId, DateTime timestamp) =>
        ProtoWire.Int32Size(eventId) + ProtoWire.FieldSize(HistoryEvent.TimestampFieldNumber, TimestampSize(timestamp));

    static void WriteHeader(ref ProtoWire.Writer writer, int eventId, DateTime timestamp)
    {
        writer.Int32(HistoryEvent.EventIdFieldNumber, eventId);
        var (seconds, nanos) = Split(timestamp);
        writer.FieldHeader(HistoryEvent.TimestampFieldNumber, TimestampSize(timestamp));
        writer.Int64(Google.Protobuf.WellKnownTypes.Timestamp.SecondsFieldNumber, seconds);
        writer.Int32(Google.Protobuf.WellKnownTypes.Timestamp.NanosFieldNumber, nanos);
    }

    /// <summary>A UTC time as <c>google.protobuf.Timestamp</c> counts it: seconds since the Unix epoch and nanoseconds.</summary>
    static (long Seconds, int Nanos) Split(DateTime utc)
    {
        long ticks = utc.Ticks - UnixEpochTicks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        return (seconds, (int)(rest * 100));
    }

    static int TimestampSize(DateTime utc)
    {
        var (seconds, nanos) = Split(utc);
        return ProtoWire.Int64Size(seconds) + ProtoWire.Int32Size(nanos);
    }

    static void Check(ProtoWire.Writer writer, Span<byte> span)
    {
        if (writer.Position != span.Length)
            throw new InvalidOperationException($"history event encoded as {writer.Position} bytes, sized {span.Length}");
    }
}
