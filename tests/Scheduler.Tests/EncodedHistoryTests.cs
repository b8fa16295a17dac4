using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
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

    /// <summary>The work item the scheduler sends for <paramref name="request"/> (which holds no past events) and <paramref name="pastEvents"/>.</summary>
    static OutboundWorkItem Send(P.OrchestratorRequest request, ReadOnlyMemory<byte> pastEvents, string token)
    {
        Assert.Empty(request.PastEvents);
        ReadOnlyMemory<byte> newEvents = ReadOnlyMemory<byte>.Empty;
        if (request.NewEvents.Count > 0)
        {
            var (fields, count) = OutboundWorkItem.EncodeNewEvents(request.NewEvents[0].Timestamp.ToDateTime(), request.NewEvents.Skip(1).ToList(), int.MaxValue, long.MaxValue);
            Assert.Equal(request.NewEvents.Count - 1, count);
            newEvents = fields;
        }

        return OutboundWorkItem.Orchestrator(request.InstanceId, request.ExecutionId, request.EntityParameters?.ToByteArray(),
            request.RequiresHistoryStreaming, request.OrchestrationTraceContext, pastEvents, newEvents, token);
    }

    static EncodedHistory Encode(IEnumerable<P.HistoryEvent> events)
    {
        var encoded = new EncodedHistory();
        foreach (var e in events) encoded.Append(e);
        return encoded;
    }

    [Fact]
    public void AnOrchestratorWorkItem_ParsesAsTheWorkItemWithItsHistory()
    {
        var history = History();
        var encoded = Encode(history);

        var sent = Send(Request("i-1"), encoded.PastEvents, "o.1.2");
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
        var encoded = Encode(history);

        Assert.Equal(history.Count, encoded.Count);
        Assert.Equal(history, encoded.EventsFrom(0).Select(b => P.HistoryEvent.Parser.ParseFrom(b.Span)));
        Assert.Equal(history.Skip(4), encoded.EventsFrom(4).Select(b => P.HistoryEvent.Parser.ParseFrom(b.Span)));
        Assert.Empty(encoded.EventsFrom(history.Count));
        Assert.Equal(history, encoded.Decode());
        Assert.Equal("HelloCities", encoded.Start?.Name);
    }

    [Fact]
    public void EventsAppendedLater_LeaveBytesHandedOutEarlierUnchanged()
    {
        var history = History().Take(2).ToList();
        var encoded = Encode(history);
        var before = encoded.PastEvents;
        byte[] copy = before.ToArray();

        // Enough events to outgrow the buffer several times.
        var more = History();
        for (int i = 0; i < 50; i++) more.Add(Event(100 + i, e => e.TimerFired = new P.TimerFiredEvent { TimerId = i, FireAt = Timestamp.FromDateTime(At) }));
        foreach (var e in more) encoded.Append(e);
        history.AddRange(more);

        Assert.Equal(copy, before.ToArray());
        var request = P.WorkItem.Parser.ParseFrom(Send(new P.OrchestratorRequest { InstanceId = "i-1" }, encoded.PastEvents, "t")
            .ToByteArray()).OrchestratorRequest;
        Assert.Equal(history, request.PastEvents);
    }

    [Fact]
    public void AnInstance_KeepsItsHistoryAsBytes_AndDecodesItOnDemand()
    {
        var instance = new InstanceState("i-1");
        foreach (var e in History()) instance.AppendHistory(e);
        Assert.Equal(6, instance.HistoryCount);
        Assert.Equal("HelloCities", instance.StartEvent?.Name);

        // Decoded on first use; events added to the list are encoded when the bytes are read next.
        var decoded = instance.History;
        Assert.Equal(History(), decoded);
        decoded.Add(Event(9, e => e.EventRaised = new P.EventRaisedEvent { Name = "late" }));
        Assert.Equal(7, instance.Encoded.Count);
        instance.ReleaseHistory();
        Assert.Equal(7, instance.HistoryCount);
        Assert.Equal("late", instance.History[^1].EventRaised.Name);

        // Continue-as-new and rewind replace the list: the bytes follow the new list, not the old events.
        var replaced = History().Skip(1).Take(2).ToList();
        instance.History = replaced;
        Assert.Equal(replaced, P.OrchestratorRequest.Parser.ParseFrom(instance.Encoded.PastEvents.Span).PastEvents);
        instance.AppendHistory(Event(3, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent()));
        Assert.Equal(3, instance.Encoded.Count);

        // A finished instance keeps compact bytes only; its start is found again by decoding them.
        instance.PackHistory();
        Assert.Equal(3, instance.HistoryCount);
        Assert.Equal("HelloCities", instance.StartEvent?.Name);
        Assert.Equal(History().Skip(1).Take(2).Append(Event(3, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent())), instance.CopyHistory());
    }

    [Fact]
    public void APackedHistory_TakesNoMoreMemoryThanItsBytes()
    {
        var instance = new InstanceState("i-1");
        foreach (var e in History().Take(4)) instance.AppendHistory(e);
        int length = instance.Encoded.PastEvents.Length;
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(instance.Encoded.PastEvents, out var growing));
        Assert.True(growing.Array!.Length > length, "the buffer grows ahead of the history");

        instance.PackHistory();
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(instance.Encoded.PastEvents, out var packed));
        Assert.Equal(length, packed.Array!.Length);
        Assert.Equal(History().Take(4), instance.CopyHistory());
    }

    /// <summary>A finished five-activity orchestration, as the .NET SDK writes it (23 events).</summary>
    static List<P.HistoryEvent> FinishedSequence()
    {
        var events = new List<P.HistoryEvent>
        {
            Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()),
            Event(-1, e => e.ExecutionStarted = new P.ExecutionStartedEvent
            {
                Name = "HelloCities",
                OrchestrationInstance = new P.OrchestrationInstance { InstanceId = "hello-549e5a51-22", ExecutionId = Guid.NewGuid().ToString("N") },
            }),
        };
        string[] cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];
        for (int i = 0; i < cities.Length; i++)
        {
            int id = i;
            events.Add(Event(id, e => e.TaskScheduled = new P.TaskScheduledEvent { Name = "SayHello", Input = $"[\"{cities[id]}\"]" }));
            events.Add(Event(-1, e => e.OrchestratorCompleted = new P.OrchestratorCompletedEvent()));
            events.Add(Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()));
            events.Add(Event(-1, e => e.TaskCompleted = new P.TaskCompletedEvent { TaskScheduledId = id, Result = $"\"Hello, {cities[id]}!\"" }));
        }

        events.Add(Event(-1, e => e.ExecutionCompleted = new P.ExecutionCompletedEvent
        {
            OrchestrationStatus = P.OrchestrationStatus.Completed,
            Result = "[" + string.Join(",", cities.Select(c => $"\"Hello, {c}!\"")) + "]",
        }));
        return events;
    }

    [Fact]
    public void AFinishedHistory_IsKeptPacked_AndReadsBackByteForByte()
    {
        var history = FinishedSequence();
        var instance = new InstanceState("hello-549e5a51-22");
        foreach (var e in history) instance.AppendHistory(e);
        byte[] before = instance.Encoded.PastEvents.ToArray();
        var eventsBefore = instance.Encoded.EventsFrom(3).Select(m => m.ToArray()).ToList();

        instance.PackHistory();
        var encoded = instance.Encoded;
        Assert.True(encoded.IsPacked);
        Assert.True(encoded.RetainedBytes < before.Length * 6 / 10, $"{encoded.RetainedBytes} of {before.Length} bytes kept");
        Assert.Equal(before, encoded.PastEvents.ToArray());
        Assert.Equal(eventsBefore, encoded.EventsFrom(3).Select(m => m.ToArray()).ToList());
        Assert.Empty(encoded.EventsFrom(history.Count));
        Assert.Equal(history, instance.CopyHistory());
        Assert.Equal("HelloCities", instance.StartEvent?.Name);

        // Appending (a rewound or restarted history) unpacks it for good and goes on from there.
        var more = Event(30, e => e.EventRaised = new P.EventRaisedEvent { Name = "late", Input = "1" });
        instance.AppendHistory(more);
        Assert.False(instance.Encoded.IsPacked);
        Assert.Equal(history.Append(more), instance.CopyHistory());
        Assert.Equal(before, instance.Encoded.PastEvents[..before.Length].ToArray());
    }

    [Fact]
    public void AShortHistory_IsNotPacked()
    {
        var instance = new InstanceState("i-1");
        instance.AppendHistory(Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent()));
        instance.PackHistory();
        Assert.False(instance.Encoded.IsPacked);
        Assert.Equal(instance.Encoded.PastEvents.Length, instance.Encoded.RetainedBytes);
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
    public void AnOrchestratorWorkItem_WithoutOptionalFields_ParsesAsTheWorkItem()
    {
        var history = History();
        var sent = Send(new P.OrchestratorRequest { InstanceId = "i-2", RequiresHistoryStreaming = true }, Encode(history).PastEvents, "o.9");
        var expected = new P.WorkItem { OrchestratorRequest = new P.OrchestratorRequest { InstanceId = "i-2", RequiresHistoryStreaming = true }, CompletionToken = "o.9" };
        expected.OrchestratorRequest.PastEvents.AddRange(history);

        var bytes = sent.ToByteArray();
        Assert.Equal(expected, P.WorkItem.Parser.ParseFrom(bytes));
        Assert.Equal(expected.CalculateSize(), bytes.Length);
    }

    [Fact]
    public void NewEvents_StopAtTheEventAndByteLimits_ButAlwaysTakeOne()
    {
        var started = Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent());
        var inbox = Enumerable.Range(0, 5).Select(i => Event(-1, e => e.EventRaised = new P.EventRaisedEvent { Name = $"e{i}", Input = new string('x', 100) })).ToList();
        int one = inbox[0].CalculateSize();

        Assert.Equal(3, OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), inbox, maxEvents: 3, maxBytes: long.MaxValue).Count);
        Assert.Equal(2, OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), inbox, maxEvents: 10, maxBytes: 2 * one).Count);
        // The first message goes even when it alone is over the byte limit.
        var (fields, count) = OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), inbox, maxEvents: 10, maxBytes: 1);
        Assert.Equal(1, count);
        Assert.Equal(new[] { started, inbox[0] }, P.OrchestratorRequest.Parser.ParseFrom(fields.Span).NewEvents);

        // A rewind goes alone with the orchestrator-started event, and nothing goes after it.
        var rewound = Event(-1, e => e.ExecutionRewound = new P.ExecutionRewoundEvent { Reason = "again" });
        (fields, count) = OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), [rewound, inbox[0]], 10, long.MaxValue);
        Assert.Equal(1, count);
        Assert.Equal(new[] { started, rewound }, P.OrchestratorRequest.Parser.ParseFrom(fields.Span).NewEvents);
        Assert.Equal(1, OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), [inbox[0], rewound, inbox[1]], 10, long.MaxValue).Count);
    }

    [Fact]
    public void NewEvents_OfAFanIn_AreEncodedWholeAndExactly()
    {
        // More messages than the encoder sizes on the stack (a fan-in of 100 results), with sizes that differ.
        var started = Event(-1, e => e.OrchestratorStarted = new P.OrchestratorStartedEvent());
        var inbox = Enumerable.Range(0, 100).Select(i => Event(-1, e => e.TaskCompleted = new P.TaskCompletedEvent { TaskScheduledId = i, Result = new string('r', i * 7) })).ToList();

        var (fields, count) = OutboundWorkItem.EncodeNewEvents(started.Timestamp.ToDateTime(), inbox, maxEvents: 1000, maxBytes: long.MaxValue);

        Assert.Equal(100, count);
        Assert.Equal(new[] { started }.Concat(inbox), P.OrchestratorRequest.Parser.ParseFrom(fields.Span).NewEvents);
        Assert.Equal(new P.OrchestratorRequest { NewEvents = { started } }.CalculateSize() + inbox.Sum(e => new P.OrchestratorRequest { NewEvents = { e } }.CalculateSize()), fields.Length);
    }

    [Fact]
    public void AnEventAppendedFromItsBytes_IsEncodedAsWhenAppendedAsAMessage()
    {
        var history = History();
        var fromMessages = Encode(history);
        var fromBytes = new EncodedHistory();
        foreach (var e in history) fromBytes.Append(e, e.ToByteArray());

        Assert.Equal(fromMessages.PastEvents.ToArray(), fromBytes.PastEvents.ToArray());
        Assert.Equal(history.Count, fromBytes.Count);
        Assert.Equal("HelloCities", fromBytes.Start?.Name);
    }

    public static TheoryData<string, string?, string?, int, bool, bool> ActivityRequests() => new()
    {
        { "SayHello", "\"Tokyo\"", null, 0, false, false },
        { "SayHello", null, "", 7, true, false },
        { "Grüße ✓", new string('ü', 5_000), "1.0", -3, true, true },
        { "", "", null, int.MaxValue, false, true },
    };

    [Theory]
    [MemberData(nameof(ActivityRequests))]
    public void AnActivityWorkItem_ParsesAsTheActivityRequest(string name, string? input, string? version, int taskId, bool traced, bool tagged)
    {
        var scheduled = new P.TaskScheduledEvent { Name = name, Input = input, Version = version };
        if (traced) scheduled.ParentTraceContext = new P.TraceContext { TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState = "k=v" };
        if (tagged)
        {
            scheduled.Tags["app"] = "tests";
            scheduled.Tags["empty"] = "";
        }

        var expected = new P.ActivityRequest
        {
            Name = name, Input = input, Version = version, TaskId = taskId, ParentTraceContext = scheduled.ParentTraceContext,
            OrchestrationInstance = new P.OrchestrationInstance { InstanceId = "i-1", ExecutionId = "0123abcd" },
        };
        expected.Tags.Add(scheduled.Tags);

        var encoded = OutboundWorkItem.EncodeActivityRequest(scheduled.Name, scheduled.Version, scheduled.Input, scheduled.ParentTraceContext,
            scheduled.Tags, "i-1", "0123abcd", taskId);
        Assert.Equal(expected, P.ActivityRequest.Parser.ParseFrom(encoded));
        if (!tagged) Assert.Equal(expected.ToByteArray(), encoded);

        var item = P.WorkItem.Parser.ParseFrom(OutboundWorkItem.Activity(encoded, "a.1.9").ToByteArray());
        Assert.Equal(new P.WorkItem { ActivityRequest = expected, CompletionToken = "a.1.9" }, item);
    }
}
