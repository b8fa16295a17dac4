using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Entities;

/// <summary>
/// What the entity rules ask of the task hub and what they have it do. Effects are called at once, in the order they
/// happen; one may come back into the rules (a forwarded lock request moves the next entity along before it returns).
/// </summary>
internal interface IEntityEffects
{
    /// <summary>True while the orchestration exists and has not ended: only such an orchestration may take a lock.</summary>
    bool IsRunning(string orchestrationId);

    /// <summary>The entity with this id, or null when there is none.</summary>
    Entity? Find(string entityId);

    /// <summary>How long to wait before handing a batch out again after it failed this many times in a row.</summary>
    TimeSpan RedeliveryDelay(int failedDeliveries);

    /// <summary>The entity changed: it is to be persisted.</summary>
    void Changed(Entity entity);

    /// <summary>A lock request goes on to the next entity of its lock set: it is queued there now.</summary>
    void ForwardLockRequest(string entityId, EntityMessage request);

    /// <summary>The orchestration holds every lock of its critical section; <paramref name="granted"/> tells it so.</summary>
    void LockGranted(string orchestrationId, HistoryEvent granted);

    /// <summary>The answer to an orchestration's call; dropped when that execution has continued as new.</summary>
    void Respond(string orchestrationId, string? executionId, HistoryEvent response);

    /// <summary>An action of an operation that ran (a signal to an entity, a new orchestration).</summary>
    void RouteAction(OperationAction action);

    /// <summary>The entity has an operation to run now: a worker is to get its next batch.</summary>
    void Ready(Entity entity);

    /// <summary>The entity has an operation to run, but not before <paramref name="at"/>: it is to be looked at again then.</summary>
    void WakeAt(Entity entity, DateTime at);

    /// <summary>Nothing can happen at the entity now: it may be forgotten when it holds nothing.</summary>
    void Idle(Entity entity);
}
