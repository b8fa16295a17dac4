using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Entities;

/// <summary>
/// The older encoding of entity messages inside orchestrations: requests travel as external events sent to the
/// entity (<c>op</c>, <c>op@&lt;due time&gt;</c>, <c>release</c>) with a JSON body, and responses come back as external
/// events named after the request id. .NET workers that use plain gRPC speak it.
/// </summary>
public static class LegacyEntityCodec
{
    public const string LockGrantedResult = "Lock Acquisition Completed";

    /// <summary>Turns an orchestration's sendEvent to an entity into a queued request; null when it is not one.</summary>
    public static EntityMessage? Decode(string eventName, string? data, string target, string senderInstanceId, string senderExecutionId, out DateTime? due)
    {
        due = null;
        if (string.IsNullOrEmpty(data)) return null;
        try
        {
            using var doc = JsonDocument.Parse(data, new JsonDocumentOptions { MaxDepth = 16 });
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return null;
            string? id = Str(root, "id");
            if (id is null) return null;
            string parent = Str(root, "parent") ?? senderInstanceId;

            if (eventName == "release")
            {
                return new EntityMessage
                {
                    Event = new HistoryEvent { EventId = -1, EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = id, ParentInstanceId = parent } },
                    ParentInstanceId = parent,
                    Legacy = true,
                };
            }

            if (!eventName.StartsWith("op", StringComparison.Ordinal)) return null;
            if (root.TryGetProperty("due", out var dueElement) && dueElement.ValueKind == JsonValueKind.String
                && DateTime.TryParse(dueElement.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var dueTime))
            {
                due = dueTime;
            }
            else if (eventName.Length > 3 && eventName[2] == '@'
                && DateTime.TryParse(eventName[3..], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var nameTime))
            {
                due = nameTime;
            }

            string? op = Str(root, "op");
            if (op is null)
            {
                if (!root.TryGetProperty("lockset", out var lockset) || lockset.ValueKind != JsonValueKind.Array) return null;
                var locks = new EntityLockRequestedEvent
                {
                    CriticalSectionId = id,
                    Position = root.TryGetProperty("pos", out var pos) && pos.TryGetInt32(out var p) ? p : 0,
                    ParentInstanceId = parent,
                };
                foreach (var entry in lockset.EnumerateArray())
                {
                    var entityId = EntityIdOf(entry);
                    if (entityId is null) return null;
                    locks.LockSet.Add(entityId);
                }

                return new EntityMessage { Event = new HistoryEvent { EventId = -1, EntityLockRequested = locks }, ParentInstanceId = parent, Legacy = true };
            }

            bool signal = root.TryGetProperty("signal", out var s) && s.ValueKind == JsonValueKind.True;
            string? input = Str(root, "input");
            Timestamp? scheduled = due is { } d ? Timestamp.FromDateTime(d) : null;
            if (signal)
            {
                return new EntityMessage
                {
                    Event = new HistoryEvent { EventId = -1, EntityOperationSignaled = new EntityOperationSignaledEvent { RequestId = id, Operation = op, Input = input, ScheduledTime = scheduled } },
                    Legacy = true,
                };
            }

            string parentExecution = Str(root, "parentExecution") ?? senderExecutionId;
            return new EntityMessage
            {
                Event = new HistoryEvent
                {
                    EventId = -1,
                    EntityOperationCalled = new EntityOperationCalledEvent
                    {
                        RequestId = id, Operation = op, Input = input, ScheduledTime = scheduled, ParentInstanceId = parent, ParentExecutionId = parentExecution,
                    },
                },
                ParentInstanceId = parent,
                ParentExecutionId = parentExecution,
                Legacy = true,
            };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    static string? Str(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    static string? EntityIdOf(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String) return e.GetString();
        if (e.ValueKind != JsonValueKind.Object) return null;
        string? name = null, key = null;
        foreach (var p in e.EnumerateObject())
        {
            if (p.NameEquals("name") || p.NameEquals("Name")) name = p.Value.GetString();
            else if (p.NameEquals("key") || p.NameEquals("Key")) key = p.Value.GetString();
        }

        return name is null ? null : $"@{name.ToLowerInvariant()}@{key}";
    }

    public static HistoryEvent LockGranted(string criticalSectionId, Timestamp now) =>
        Raised(criticalSectionId, Json(w => w.WriteString("result", LockGrantedResult)), now);

    public static HistoryEvent OperationCompleted(string requestId, string? output, Timestamp now) =>
        Raised(requestId, Json(w =>
        {
            if (output is null) w.WriteNull("result");
            else w.WriteString("result", output);
        }), now);

    public static HistoryEvent OperationFailed(string requestId, TaskFailureDetails failure, Timestamp now) =>
        Raised(requestId, Json(w =>
        {
            w.WriteString("result", failure.ErrorMessage);
            w.WriteString("exceptionType", failure.ErrorType);
            w.WritePropertyName("failureDetails");
            WriteFailure(w, failure, 0);
        }), now);

    static void WriteFailure(Utf8JsonWriter w, TaskFailureDetails f, int depth)
    {
        w.WriteStartObject();
        w.WriteString("ErrorType", f.ErrorType);
        w.WriteString("ErrorMessage", f.ErrorMessage);
        if (f.StackTrace is null) w.WriteNull("StackTrace");
        else w.WriteString("StackTrace", f.StackTrace);
        if (f.InnerFailure is { } inner && depth < 10)
        {
            w.WritePropertyName("InnerFailure");
            WriteFailure(w, inner, depth + 1);
        }

        w.WriteBoolean("IsNonRetriable", f.IsNonRetriable);
        w.WriteEndObject();
    }

    static HistoryEvent Raised(string name, string input, Timestamp now) =>
        new() { EventId = -1, Timestamp = now, EventRaised = new EventRaisedEvent { Name = name, Input = input } };

    static string Json(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
