using DurableTask.Scheduler.Orchestration;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Every episode's OrchestratorStarted, scheduled tasks and OrchestratorCompleted are encoded straight from their parts
/// (EventWire), without building the messages. A worker and the store parse those bytes: they must be exactly the
/// event the message would have been.
/// </summary>
public class EventWireTests
{
    public static TheoryData<int, string> Times => new()
    {
        { 0, "2025-03-01T12:00:00.0000000Z" },          // whole second: no nanos field
        { 7, "2025-03-01T12:00:00.1234567Z" },          // 100 ns ticks
        { 300, "2026-12-03T23:59:59.9999999Z" },        // multi-byte event id, largest nanos
        { 1_000_000, "1970-01-01T00:00:00.0000000Z" },  // the epoch: an empty timestamp
        { 2, "1969-12-31T23:59:59.5000000Z" },          // before the epoch: negative seconds, positive nanos
    };

    public static TheoryData<string> Instants => new(Times.Select(row => (string)row[1]));

    static DateTime Parse(string at) => DateTime.Parse(at, null, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal);

    static IEnumerable<P.ScheduleTaskAction> Tasks()
    {
        yield return new P.ScheduleTaskAction { Name = "SayHello" };
        yield return new P.ScheduleTaskAction { Name = "SayHello", Input = "\"Tökyö ✓\"", Version = "" };
        yield return new P.ScheduleTaskAction { Name = "Big", Input = new string('x', 70_000), Version = "2.0" };
        var traced = new P.ScheduleTaskAction
        {
            Name = "Traced",
            Input = "1",
            ParentTraceContext = new P.TraceContext { TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState = "k=v" },
        };
        traced.Tags["app"] = "tests";
        traced.Tags["team"] = "dürable";
        yield return traced;
    }

    [Theory]
    [MemberData(nameof(Times))]
    public void TaskScheduled_ParsesAsTheEventMessage(int eventId, string at)
    {
        var now = Parse(at);
        foreach (var task in Tasks())
        {
            var expected = new P.HistoryEvent
            {
                EventId = eventId,
                Timestamp = Timestamp.FromDateTime(now),
                TaskScheduled = new P.TaskScheduledEvent { Name = task.Name, Version = task.Version, Input = task.Input, ParentTraceContext = task.ParentTraceContext },
            };
            expected.TaskScheduled.Tags.Add(task.Tags);

            int size = EventWire.TaskScheduledSize(eventId, now, task, out int eventSize);
            var bytes = new byte[size];
            EventWire.WriteTaskScheduled(bytes, eventId, now, task, eventSize);

            Assert.Equal(expected.CalculateSize(), size);
            Assert.Equal(expected, P.HistoryEvent.Parser.ParseFrom(bytes));
            Assert.Equal(expected.ToByteArray(), bytes);
        }
    }

    [Theory]
    [MemberData(nameof(Instants))]
    public void EpisodeBoundaries_ParseAsTheEventMessages(string at)
    {
        var now = Parse(at);
        var started = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), OrchestratorStarted = new P.OrchestratorStartedEvent() };
        var completed = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), OrchestratorCompleted = new P.OrchestratorCompletedEvent() };

        var startedBytes = new byte[EventWire.OrchestratorStartedSize(now)];
        EventWire.WriteOrchestratorStarted(startedBytes, now);
        var completedBytes = new byte[EventWire.OrchestratorCompletedSize(now)];
        EventWire.WriteOrchestratorCompleted(completedBytes, now);

        Assert.Equal(started.ToByteArray(), startedBytes);
        Assert.Equal(started, P.HistoryEvent.Parser.ParseFrom(startedBytes));
        Assert.Equal(completed.ToByteArray(), completedBytes);
        Assert.Equal(completed, P.HistoryEvent.Parser.ParseFrom(completedBytes));
    }

    [Fact]
    public void EventsWrittenInPlace_JoinTheEncodedHistory()
    {
        var now = Parse("2025-03-01T12:00:00.25Z");
        var history = new EncodedHistory();
        var started = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), OrchestratorStarted = new P.OrchestratorStartedEvent() };
        history.Append(started);
        var task = Tasks().Last();
        EventWire.WriteTaskScheduled(history.AppendEncoded(EventWire.TaskScheduledSize(0, now, task, out int eventSize)), 0, now, task, eventSize);
        EventWire.WriteOrchestratorCompleted(history.AppendEncoded(EventWire.OrchestratorCompletedSize(now)), now);

        var events = history.Decode();
        Assert.Equal(3, history.Count);
        Assert.Equal([P.HistoryEvent.EventTypeOneofCase.OrchestratorStarted, P.HistoryEvent.EventTypeOneofCase.TaskScheduled, P.HistoryEvent.EventTypeOneofCase.OrchestratorCompleted],
            events.Select(e => e.EventTypeCase));
        Assert.Equal("Traced", events[1].TaskScheduled.Name);
        Assert.Equal("dürable", events[1].TaskScheduled.Tags["team"]);
        Assert.Equal(now, events[2].Timestamp.ToDateTime());
    }

    [Fact]
    public void AHistoryHeldAsMessages_TakesEventsWrittenInPlace_AfterItsMessages()
    {
        var now = Parse("2025-03-01T12:00:00.5Z");
        var instance = new InstanceState("i-1");
        var started = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), OrchestratorStarted = new P.OrchestratorStartedEvent() };
        instance.AppendHistory(started);
        // Reading the history as messages keeps it as messages (a query, a rewind); a message appended then is
        // encoded only when the bytes are next read.
        var raised = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), EventRaised = new P.EventRaisedEvent { Name = "go" } };
        instance.History.Add(raised);

        EventWire.WriteOrchestratorCompleted(instance.AppendEncoded(EventWire.OrchestratorCompletedSize(now)), now);

        var completed = new P.HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(now), OrchestratorCompleted = new P.OrchestratorCompletedEvent() };
        Assert.Equal([started, raised, completed], instance.History);
        Assert.Equal(3, instance.HistoryCount);
    }
}
