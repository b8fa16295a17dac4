using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Dispatch;

/// <summary>
/// A client long-poll waiting for an instance to start or finish. The change that satisfies it hands over the state
/// it produced, so the waiter neither takes the hub's lock again nor finds the instance gone from memory.
/// </summary>
public sealed class Waiter(bool untilCompletion, bool includePayloads)
{
    public bool UntilCompletion { get; } = untilCompletion;
    public bool IncludePayloads { get; } = includePayloads;
    public TaskCompletionSource<OrchestrationState> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
