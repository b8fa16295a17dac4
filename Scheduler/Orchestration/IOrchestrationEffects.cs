using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// What a change of one instance asks of the world around it, as <see cref="OrchestrationStateMachine"/> decides it.
/// The task hub implements it: it queues, arms, routes and records. Called synchronously, in the order the state
/// machine decides, while the caller holds whatever guards the instance; nothing here is durable until the change's
/// commit is.
/// </summary>
public interface IOrchestrationEffects
{
    /// <summary>
    /// An activity to run for the instance's current execution; its <c>TaskScheduled</c> event is in the history.
    /// <paramref name="recovered"/> is true for one owed since before a restart (its event is already stored).
    /// </summary>
    void ScheduleActivity(InstanceState instance, int taskId, string name, string? version, string? input, TraceContext? traceContext,
        MapField<string, string> tags, bool recovered);

    /// <summary>A durable timer of the current execution to fire at <paramref name="fireAt"/> (never before; at once when past).</summary>
    void ArmTimer(InstanceState instance, int timerId, Timestamp fireAt);

    /// <summary>A sub-orchestration to start; its <c>SubOrchestrationInstanceCreated</c> event is in the parent's history.</summary>
    void StartChild(InstanceState parent, int taskScheduledId, CreateSubOrchestrationAction action);

    /// <summary>
    /// A message for another orchestration instance (an event raised, a termination, a child's result to its parent),
    /// for its execution <paramref name="executionId"/> when one is given.
    /// </summary>
    void SendToInstance(string instanceId, string? executionId, HistoryEvent message);

    /// <summary>
    /// An event the instance sent (its <c>EventSent</c> is in its history): raised at the orchestration
    /// <paramref name="target"/> (its execution <paramref name="executionId"/>, when given; see
    /// <see cref="OrchestrationStateMachine.EventRaised"/>), or, for an entity id, an entity request in the older encoding.
    /// </summary>
    void SendEvent(InstanceState sender, string target, string? executionId, string name, string? data);

    /// <summary>An entity request, lock request or unlock an orchestration sent.</summary>
    void SendEntityMessage(InstanceState sender, SendEntityMessageAction action);

    /// <summary>The instance's execution ended (completed, failed or terminated): what it held is released.</summary>
    void ExecutionEnded(InstanceState instance);

    /// <summary>A recursive termination reaches a sub-orchestration the instance started.</summary>
    void TerminateChild(string childInstanceId, string? reason);

    /// <summary>
    /// A rewind found a sub-orchestration without a result: a failed child is rewound too, a missing one started again.
    /// </summary>
    void RewindChild(InstanceState parent, int taskScheduledId, SubOrchestrationInstanceCreatedEvent created);
}
