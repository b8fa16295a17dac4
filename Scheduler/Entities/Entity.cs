using DurableTask.Scheduler.Dispatch;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Entities;

/// <summary>
/// A durable entity: its state, its FIFO queue of requests, and its lock. Guarded by the owning task hub's lock.
/// At most one batch of operations is in flight per entity.
/// </summary>
public sealed class Entity
{
    public Entity(string instanceId)
    {
        InstanceId = instanceId;
        Name = EntityIds.NameOf(instanceId);
    }

    /// <summary><c>@name@key</c>, the name lower-cased.</summary>
    public string InstanceId { get; }
    public string Name { get; }
    public string? State { get; set; }
    public DateTime LastModified { get; set; }

    /// <summary>Requests not yet processed, oldest first.</summary>
    public LinkedList<EntityMessage> Queue { get; } = new();

    /// <summary>The orchestration holding this entity's lock, and the critical section it is for.</summary>
    public string? LockedBy { get; set; }
    public string? LockCriticalSectionId { get; set; }

    public InFlightEntityBatch? InFlight { get; set; }

    /// <summary>Requests that become due later (scheduled signals), with their due time.</summary>
    public List<(DateTime Due, EntityMessage Message)> Scheduled { get; } = new();

    /// <summary>Commit epoch of the entity's latest change.</summary>
    public long DirtyEpoch { get; set; }
    public bool Queued { get; set; }
    public DateTime NotBefore { get; set; }
    public int FailedDeliveries { get; set; }

    /// <summary>Run one operation per batch, so that an operation whose result breaks a limit can be failed alone.</summary>
    public bool SingleOperationBatches { get; set; }

    /// <summary>Recently seen request ids, for deduplicating client signals.</summary>
    public HashSet<string>? RecentRequestIds { get; set; }
    public Queue<string>? RecentRequestOrder { get; set; }

    public bool IsEmpty => State is null && Queue.Count == 0 && Scheduled.Count == 0 && LockedBy is null && InFlight is null;
}

/// <summary>A request queued at an entity, with what is needed to answer its caller in the caller's encoding.</summary>
public sealed class EntityMessage
{
    /// <summary>An EntityOperationSignaled, EntityOperationCalled, EntityLockRequested or EntityUnlockSent event.</summary>
    public required HistoryEvent Event { get; init; }

    /// <summary>The orchestration that sent it (calls, locks, unlocks); null for client signals.</summary>
    public string? ParentInstanceId { get; init; }
    public string? ParentExecutionId { get; init; }

    /// <summary>The caller uses the JSON-in-external-event encoding of entity messages.</summary>
    public bool Legacy { get; init; }

    public bool IsOperation => Event.EventTypeCase is HistoryEvent.EventTypeOneofCase.EntityOperationSignaled
        or HistoryEvent.EventTypeOneofCase.EntityOperationCalled;

    public string RequestId => Event.EventTypeCase switch
    {
        HistoryEvent.EventTypeOneofCase.EntityOperationSignaled => Event.EntityOperationSignaled.RequestId,
        HistoryEvent.EventTypeOneofCase.EntityOperationCalled => Event.EntityOperationCalled.RequestId,
        HistoryEvent.EventTypeOneofCase.EntityLockRequested => Event.EntityLockRequested.CriticalSectionId,
        HistoryEvent.EventTypeOneofCase.EntityUnlockSent => Event.EntityUnlockSent.CriticalSectionId,
        _ => "",
    };
}

public sealed class InFlightEntityBatch : InFlightWork
{
    public override WorkKind Kind => WorkKind.Entity;
    public required Entity Entity { get; init; }
    public required List<EntityMessage> Batch { get; init; }
}

public static class EntityIds
{
    /// <summary>True for <c>@name@key</c> with a non-empty name.</summary>
    public static bool IsEntityId(string? id) => id is { Length: > 2 } && id[0] == '@' && id.IndexOf('@', 1) > 1;

    public static string NameOf(string id) => id[1..id.IndexOf('@', 1)];

    /// <summary>Validates an entity id; returns a problem description or null.</summary>
    public static string? Check(string? id, string field = "instanceId")
    {
        if (string.IsNullOrEmpty(id)) return $"{field} is required";
        if (!IsEntityId(id)) return $"{field} '{(id.Length > 80 ? id[..80] + "..." : id)}' is not an entity id; entity ids have the form '@name@key'";
        if (id.Length > 400) return $"{field} is {id.Length} characters long; the limit for entity ids is 400 characters";
        foreach (var c in id)
        {
            if (char.IsControl(c)) return $"{field} contains a non-printable character (U+{(int)c:X4})";
        }

        return null;
    }

    /// <summary>Lower-cases the name part, as the SDKs do.</summary>
    public static string Normalize(string id)
    {
        int split = id.IndexOf('@', 1);
        var name = id[1..split];
        return name.Any(char.IsUpper) ? "@" + name.ToLowerInvariant() + id[split..] : id;
    }
}
