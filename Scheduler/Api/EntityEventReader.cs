using System.Text.Json;
using DurableTask.Scheduler.Entities;
using Microsoft.DurableTask.Protobuf;
using EventType = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.Api;

/// <summary>
/// Reads the entity messages of one orchestration's history, in either encoding, as what they mean: calls, signals,
/// lock requests and unlocks the orchestration sent, and the results, failures and lock grants it received. Read the
/// events in history order: an older-encoding answer is an external event named after the request it answers, so it is
/// recognised only after its request.
/// </summary>
sealed class EntityEventReader(int payloadLimit)
{
    // Requests sent in the older encoding that are still owed an answer, by request (or critical-section) id.
    readonly Dictionary<string, bool> _legacyPending = new(StringComparer.Ordinal);

    public EntityEventView? Read(HistoryEvent e) => e.EventTypeCase switch
    {
        EventType.EventSent => Legacy(e.EventSent),
        EventType.EventRaised => LegacyAnswer(e.EventRaised),
        EventType.EntityOperationCalled or EventType.EntityOperationSignaled or EventType.EntityLockRequested or EventType.EntityUnlockSent =>
            Request(e, e.EventTypeCase switch
            {
                EventType.EntityOperationCalled => e.EntityOperationCalled.TargetInstanceId,
                EventType.EntityOperationSignaled => e.EntityOperationSignaled.TargetInstanceId,
                EventType.EntityUnlockSent => e.EntityUnlockSent.TargetInstanceId,
                _ => null,
            }),
        EventType.EntityOperationCompleted => new EntityEventView(EntityEventKinds.Result, e.EntityOperationCompleted.RequestId,
            Output: HistoryViews.Cut(e.EntityOperationCompleted.Output, payloadLimit)),
        EventType.EntityOperationFailed => new EntityEventView(EntityEventKinds.Failure, e.EntityOperationFailed.RequestId,
            Failure: HistoryViews.ToFailure(e.EntityOperationFailed.FailureDetails)),
        EventType.EntityLockGranted => new EntityEventView(EntityEventKinds.LockGranted, e.EntityLockGranted.CriticalSectionId),
        _ => null,
    };

    EntityEventView? Legacy(EventSentEvent sent)
    {
        if (!sent.InstanceId.StartsWith('@')) return null;
        var message = LegacyEntityCodec.Decode(sent.Name, sent.Input, sent.InstanceId, "", "", out _);
        if (message is null) return null;
        var view = Request(message.Event, sent.InstanceId);
        if (view is { Kind: EntityEventKinds.Call or EntityEventKinds.LockRequest, RequestId: { } id }) _legacyPending[id] = view.Kind == EntityEventKinds.LockRequest;
        return view;
    }

    /// <summary>An external event that answers an older-encoding call (<c>{"result": ...}</c>, with the failure's details when it failed) or lock request.</summary>
    EntityEventView? LegacyAnswer(EventRaisedEvent raised)
    {
        if (!_legacyPending.Remove(raised.Name, out var isLock)) return null;
        string? result = null;
        Failure? failure = null;
        try
        {
            using var doc = JsonDocument.Parse(raised.Input ?? "null", new JsonDocumentOptions { MaxDepth = 64 });
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("result", out var r)) result = r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                if (root.TryGetProperty("failureDetails", out var details) && details.ValueKind == JsonValueKind.Object) failure = LegacyFailure(details, 0);
                else if (root.TryGetProperty("exceptionType", out var type) && type.ValueKind == JsonValueKind.String)
                    failure = new Failure(type.GetString() ?? "", result ?? "", null, false, null);
            }
        }
        catch (JsonException)
        {
        }

        if (isLock) return new EntityEventView(EntityEventKinds.LockGranted, raised.Name);
        return failure is not null
            ? new EntityEventView(EntityEventKinds.Failure, raised.Name, Failure: failure)
            : new EntityEventView(EntityEventKinds.Result, raised.Name, Output: HistoryViews.Cut(result, payloadLimit));
    }

    static Failure LegacyFailure(JsonElement e, int depth)
    {
        string? Str(string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var inner = depth < 10 && e.TryGetProperty("InnerFailure", out var i) && i.ValueKind == JsonValueKind.Object ? LegacyFailure(i, depth + 1) : null;
        return new Failure(Str("ErrorType") ?? "", Str("ErrorMessage") ?? "", Str("StackTrace"),
            e.TryGetProperty("IsNonRetriable", out var n) && n.ValueKind == JsonValueKind.True, inner);
    }

    EntityEventView? Request(HistoryEvent e, string? target) => e.EventTypeCase switch
    {
        EventType.EntityOperationCalled => new EntityEventView(EntityEventKinds.Call, e.EntityOperationCalled.RequestId, target,
            e.EntityOperationCalled.Operation, Input: HistoryViews.Cut(e.EntityOperationCalled.Input, payloadLimit),
            ScheduledTime: e.EntityOperationCalled.ScheduledTime?.ToDateTime()),
        EventType.EntityOperationSignaled => new EntityEventView(EntityEventKinds.Signal, e.EntityOperationSignaled.RequestId, target,
            e.EntityOperationSignaled.Operation, Input: HistoryViews.Cut(e.EntityOperationSignaled.Input, payloadLimit),
            ScheduledTime: e.EntityOperationSignaled.ScheduledTime?.ToDateTime()),
        EventType.EntityLockRequested => new EntityEventView(EntityEventKinds.LockRequest, e.EntityLockRequested.CriticalSectionId,
            LockSet: [.. e.EntityLockRequested.LockSet]),
        EventType.EntityUnlockSent => new EntityEventView(EntityEventKinds.Unlock, e.EntityUnlockSent.CriticalSectionId, target),
        _ => null,
    };
}

/// <summary>The kinds of <see cref="EntityEventView"/>.</summary>
static class EntityEventKinds
{
    public const string Call = "Call";
    public const string Signal = "Signal";
    public const string LockRequest = "LockRequest";
    public const string Unlock = "Unlock";
    public const string Result = "Result";
    public const string Failure = "Failure";
    public const string LockGranted = "LockGranted";
}
