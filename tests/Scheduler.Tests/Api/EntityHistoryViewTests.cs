using DurableTask.Scheduler.Api;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Api;

/// <summary>
/// Entity messages in the newer encoding (the protocol's entity events), read by the API from a hand-built history:
/// the older encoding is covered end to end with the .NET SDK in the dashboard's API tests.
/// </summary>
public sealed class EntityHistoryViewTests
{
    static readonly DateTime T0 = new(2026, 1, 31, 12, 0, 0, DateTimeKind.Utc);

    static HistoryEvent At(int ms, int eventId = -1) => new() { EventId = eventId, Timestamp = Timestamp.FromDateTime(T0.AddMilliseconds(ms)) };

    static List<HistoryEvent> CriticalSection()
    {
        var history = new List<HistoryEvent>();
        void Add(int ms, int eventId, Action<HistoryEvent> set)
        {
            var e = At(ms, eventId);
            set(e);
            history.Add(e);
        }

        Add(0, -1, e => e.ExecutionStarted = new ExecutionStartedEvent { Name = "Transfer" });
        Add(0, 0, e => e.EntityLockRequested = new EntityLockRequestedEvent { CriticalSectionId = "cs", LockSet = { "@account@alice", "@account@bob" } });
        Add(10, -1, e => e.EntityLockGranted = new EntityLockGrantedEvent { CriticalSectionId = "cs" });
        Add(10, 1, e => e.EntityOperationCalled = new EntityOperationCalledEvent
        {
            RequestId = "r1", Operation = "Withdraw", Input = "30", TargetInstanceId = "@account@alice",
        });
        Add(25, -1, e => e.EntityOperationCompleted = new EntityOperationCompletedEvent { RequestId = "r1", Output = "70" });
        Add(25, 2, e => e.EntityOperationCalled = new EntityOperationCalledEvent { RequestId = "r2", Operation = "Deposit", Input = "30", TargetInstanceId = "@account@bob" });
        Add(40, -1, e => e.EntityOperationFailed = new EntityOperationFailedEvent
        {
            RequestId = "r2", FailureDetails = new TaskFailureDetails { ErrorType = "InvalidOperationException", ErrorMessage = "account closed" },
        });
        Add(40, 3, e => e.EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = "cs", TargetInstanceId = "@account@alice" });
        Add(40, 4, e => e.EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = "cs", TargetInstanceId = "@account@bob" });
        Add(40, 5, e => e.EntityOperationSignaled = new EntityOperationSignaledEvent { RequestId = "s1", Operation = "Note", Input = "\"sent\"", TargetInstanceId = "@account@alice" });
        return history;
    }

    [Fact]
    public void History_reads_calls_results_failures_locks_and_signals()
    {
        var views = HistoryViews.ToViews(CriticalSection(), 100);
        var entity = views.Select(v => v.Entity).ToList();
        Assert.Null(entity[0]);
        Assert.Equal(["LockRequest", "LockGranted", "Call", "Result", "Call", "Failure", "Unlock", "Unlock", "Signal"], entity.Skip(1).Select(e => e!.Kind));
        Assert.Equal(["@account@alice", "@account@bob"], entity[1]!.LockSet!);
        Assert.Equal(("r1", "@account@alice", "Withdraw", "30"), (entity[3]!.RequestId, entity[3]!.EntityId, entity[3]!.Operation, entity[3]!.Input!.Value));
        Assert.Equal(("r1", "70"), (entity[4]!.RequestId, entity[4]!.Output!.Value));
        Assert.Equal("account closed", entity[6]!.Failure!.ErrorMessage);
        Assert.Equal("@account@bob", entity[8]!.EntityId);

        // The event's own fields say the same for a reader of the plain history.
        Assert.Equal(("Withdraw", "@account@alice", "30"), (views[3].Name, views[3].InstanceId, views[3].Payload!.Value));
        Assert.Equal("70", views[4].Payload!.Value);
        Assert.Equal("account closed", views[6].Failure!.ErrorMessage);
    }

    [Fact]
    public void Timeline_has_the_critical_section_its_calls_and_the_signal()
    {
        var items = HistoryViews.ToTimeline(CriticalSection()).Items;
        Assert.Equal(["EntityLock", "EntityCall", "EntityCall", "EntitySignal"], items.Select(i => i.Kind));

        var section = items[0];
        Assert.Equal(("Released", 1, 7), (section.Status, section.StartIndex, section.EndIndex));
        Assert.Equal(T0.AddMilliseconds(10), section.Acquired);
        Assert.Equal(T0.AddMilliseconds(40), section.End);
        Assert.Equal(["@account@alice", "@account@bob"], section.LockSet!);

        Assert.Equal(("Withdraw", "@account@alice", "Completed", T0.AddMilliseconds(25)), (items[1].Name, items[1].EntityId, items[1].Status, items[1].End));
        Assert.Equal(("Deposit", "Failed", 6), (items[2].Name, items[2].Status, items[2].EndIndex));
        Assert.Equal(("Note", "Sent", T0.AddMilliseconds(40)), (items[3].Name, items[3].Status, items[3].End));
    }

    [Fact]
    public void A_call_without_an_answer_is_still_running_and_a_lock_not_granted_is_waiting()
    {
        var history = CriticalSection().Take(4).ToList();
        history.RemoveAt(2);
        var items = HistoryViews.ToTimeline(history).Items;
        Assert.Equal([("EntityLock", "Waiting"), ("EntityCall", "Running")], items.Select(i => (i.Kind, i.Status)));
        Assert.All(items, i => Assert.Null(i.End));
    }
}
