using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Eternal orchestration: do some periodic work, sleep on a durable timer, and continue-as-new with the next
/// iteration's state. It never completes on its own; stop it with <c>POST /api/instances/{id}/terminate</c>.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/PeriodicCleanup?instanceId=cleanup</c> with body <c>{"intervalSeconds": 10}</c>.
/// Each execution's input (shown by the status endpoint) carries the iteration number.
/// </remarks>
public sealed class PeriodicCleanup : TaskOrchestrator<CleanupState?, object?>
{
    public override async Task<object?> RunAsync(TaskOrchestrationContext context, CleanupState? state)
    {
        state ??= new CleanupState();
        var removed = await context.CallActivityAsync<int>(nameof(CleanupOldRecords), state.Iteration);
        context.SetCustomStatus(new { state.Iteration, removed, lastRun = context.CurrentUtcDateTime });

        await context.CreateTimer(TimeSpan.FromSeconds(Math.Max(0, state.IntervalSeconds)), CancellationToken.None);

        // Events that arrived during this execution are carried over into the next one.
        context.ContinueAsNew(state with { Iteration = state.Iteration + 1 }, preserveUnprocessedEvents: true);
        return null;
    }
}

/// <remarks>JSON: <c>{"intervalSeconds": 10, "iteration": 0}</c>.</remarks>
public sealed record CleanupState(double IntervalSeconds = 10, int Iteration = 0);

/// <summary>Would delete expired records; returns how many it removed.</summary>
public sealed class CleanupOldRecords(ILogger<CleanupOldRecords> logger) : TaskActivity<int, int>
{
    public override Task<int> RunAsync(TaskActivityContext context, int iteration)
    {
        var removed = iteration % 3;
        logger.CleanupRan(iteration, removed);
        return Task.FromResult(removed);
    }
}
