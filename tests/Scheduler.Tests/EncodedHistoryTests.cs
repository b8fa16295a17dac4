using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Orchestration;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Xunit;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Orchestrator work items carry past events encoded once (EncodedHistory) and copied into the message: what a worker
/// parses must be exactly the work item it would get had the history been serialized message by message.
/// </summary>
public class EncodedHistoryTests
{
    static readonly DateTime At = new(2025, 3, 1, 12, 0, 0, DateTimeKind.Utc);

    static P.HistoryEvent Event(int id, Action<P.HistoryEvent> set)
    {
        var e = new P.HistoryEvent { EventId = id, Timestamp = Timestamp.FromDateTime(At.AddMilliseconds(id)) };
        set(e);
        return e;
    }

    /// <summary>A history with small and large events (multi-byte lengths), maps, unicode and failure details.</summary>
    static List<P.HistoryEvent> History()
    {
        var started = Event(-1, e => e.ExecutionStarted = new P.ExecutionStartedEvent
        {
            Name = "HelloCities",
            Input = "\"Tökyö ✓\"",
            OrchestrationInstance = new P.OrchestrationInstance { InstanceId = "i-1", ExecutionId = "x-1" },
            ParentTraceContext = new P.TraceContext { TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
        });
        started.ExecutionStarted.Tags["app"] = "tests";
        started.ExecutionStarted.Tags["team"] = "durable";
        return
        [
            Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()),
            started,
            Event(0, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "SayHello", Input = new string('x', 300) }),
            Event(-1, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent()),
            Event(-1, e => e.TaskCompleted = new P.TaskCompletedEvent { TaskScheduledId = 0, Result = new string('y', 70_000) }),
            Event(1, e => e.TaskFailed = new P.TaskFailedEvent
            {
                TaskScheduledId = 1,
                FailureDetails = new P.TaskFailureDetails { ErrorType = "Boom", ErrorMessage = "failed", InnerFailure = new P.TaskFailureDetails { ErrorType = "Inner" } },
            }),
        ];
    }

    static P.OrchestratorRequest Request(string instanceId) => new()
    {
        InstanceId = instanceId,
        ExecutionId = "x-1",
        EntityParameters = new P.OrchestratorEntityParameters { EntityMessageReorderWindow = new Duration() },
        NewEvents = { Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()), Event(-1, e => e.EventRaised = new P.EventRaisedEvent { Name = "go", Input = "1" }) },
        OrchestrationTraceContext = new P.OrchestrationTraceContext { SpanID = "0123456789abcdef" },
    };

    [Fact]
    public void AnOrchestratorWorkItem_ParsesAsTheWorkItemWithItsHistory()
    {
        var history = History();
        var encoded = new EncodedHistory();
        encoded.Sync(history);

        var sent = new OutboundWorkItem(Request("i-1"), encoded.PastEvents, "o.1.2");
        var expected = new P.WorkItem { OrchestratorRequest = Request("i-1"), CompletionToken = "o.1.2" };
        expected.OrchestratorRequest.PastEvents.AddRange(history);

        var received = P.WorkItem.Parser.ParseFrom(sent.ToByteArray());
        Assert.Equal(expected, received);
        Assert.Equal(history, received.OrchestratorRequest.PastEvents);
        Assert.Equal(expected.CalculateSize(), sent.ToByteArray().Length);
    }

    [Fact]
    public void EachEncodedEvent_IsThatEventsOwnSerialization()
    {
        var history = History();
        var encoded = new EncodedHistory();
        encoded.Sync(history);

        Assert.Equal(history.Count, encoded.Count);
        for (int i = 0; i < history.Count; i++)
            Assert.Equal(history[i], P.HistoryEvent.Parser.ParseFrom(encoded.Event(i).Span));
    }

    [Fact]
    public void EventsAppendedLater_LeaveBytesHandedOutEarlierUnchanged()
    {
        var history = History().Take(2).ToList();
        var encoded = new EncodedHistory();
        encoded.Sync(history);
        var before = encoded.PastEvents;
        byte[] copy = before.ToArray();

        // Enough events to outgrow the buffer several times.
        foreach (var e in History()) history.Add(e);
        for (int i = 0; i < 50; i++) history.Add(Event(100 + i, e => e.TimerFired = new P.TimerFiredEvent { TimerId = i, FireAt = Timestamp.FromDateTime(At) }));
        encoded.Sync(history);

        Assert.Equal(copy, before.ToArray());
        var request = P.OrchestratorRequest.Parser.ParseFrom(new OutboundWorkItem(new P.OrchestratorRequest { InstanceId = "i-1" }, encoded.PastEvents, "t")
            .ToWorkItem().OrchestratorRequest.ToByteArray());
        Assert.Equal(history, request.PastEvents);
    }

    [Fact]
    public void AReplacedHistory_IsEncodedAfresh()
    {
        var encoded = new EncodedHistory();
        var first = History();
        encoded.Sync(first);

        // Continue-as-new and rewind replace the list; its events are not a continuation of the old ones.
        var second = History().Skip(1).Take(2).ToList();
        encoded.Sync(second);

        Assert.Equal(2, encoded.Count);
        var parsed = P.OrchestratorRequest.Parser.ParseFrom(encoded.PastEvents.ToArray());
        Assert.Equal(second, parsed.PastEvents);
    }

    [Fact]
    public void OtherWorkItems_AreWrittenAsTheyAre()
    {
        var item = new P.WorkItem
        {
            ActivityRequest = new P.ActivityRequest { Name = "SayHello", Input = "\"Lima\"", TaskId = 4, OrchestrationInstance = new P.OrchestrationInstance { InstanceId = "i-1" } },
            CompletionToken = "a.1.9",
        };
        Assert.Equal(item.ToByteArray(), new OutboundWorkItem(item).ToByteArray());
    }

    [Fact]
    public void ARequestThatAlreadyHoldsPastEvents_IsRefused()
    {
        var request = Request("i-1");
        request.PastEvents.Add(History()[0]);
        Assert.Throws<ArgumentException>(() => new OutboundWorkItem(request, ReadOnlyMemory<byte>.Empty, "t"));
    }
}
