using DurableTask.Dashboard.Api;

namespace DurableTask.Dashboard.Components;

/// <summary>
/// The entity messages of one history read together: each answer knows its request (entity, operation), a lock grant
/// how long it waited, an unlock how long the lock was held.
/// </summary>
public sealed class EntityReading
{
    readonly Dictionary<string, (EntityEventView View, DateTime At)> _requests = new(StringComparer.Ordinal);
    readonly Dictionary<string, DateTime> _granted = new(StringComparer.Ordinal);

    public EntityReading(IEnumerable<HistoryEventView> history)
    {
        foreach (var e in history)
        {
            if (e.Entity is not { RequestId: { } id } entity) continue;
            if (entity.Kind is "Call" or "Signal" or "LockRequest") _requests.TryAdd(id, (entity, e.Timestamp));
            else if (entity.Kind == "LockGranted") _granted.TryAdd(id, e.Timestamp);
        }
    }

    /// <summary>The call or lock request an answer belongs to.</summary>
    public (EntityEventView View, DateTime At)? RequestOf(EntityEventView answer) =>
        answer.RequestId is { } id && _requests.TryGetValue(id, out var request) ? request : null;

    /// <summary>When the critical section an unlock ends was granted its locks.</summary>
    public DateTime? GrantedAt(EntityEventView e) => e.RequestId is { } id && _granted.TryGetValue(id, out var at) ? at : null;

    /// <summary>"account@alice" for "@account@alice".</summary>
    public static string Label(string? entityId) => string.IsNullOrEmpty(entityId) ? "" : entityId.TrimStart('@');

    public static string Url(string hub, string entityId) =>
        $"{FilterQuery.HubPath(hub, "/entities")}?prefix={Uri.EscapeDataString(Label(entityId))}";

    /// <summary>The operation with its input as a call would be written: <c>Withdraw(30)</c>.</summary>
    public static string Call(string? operation, Payload? input) =>
        $"{operation}({(input is null ? "" : Short(input))})";

    public static string Short(Payload payload) => payload.Value.Length > 80 || payload.Truncated ? payload.Value[..Math.Min(80, payload.Value.Length)] + "..." : payload.Value;
}
