using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Async HTTP API: a long-running job that reports progress through its custom status. The pattern itself is in the
/// HTTP endpoints (<see cref="Api.OrchestrationEndpoints"/>): the start call answers 202 at once with a
/// <c>statusQueryGetUri</c>, which keeps answering 202 (with the progress) until the job is done and then 200.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/LongRunningJob</c> with body <c>{"steps": 5, "stepSeconds": 2}</c>; poll the status URI.
/// </remarks>
public sealed class LongRunningJob : TaskOrchestrator<JobRequest?, JobResult>
{
    public override async Task<JobResult> RunAsync(TaskOrchestrationContext context, JobRequest? request)
    {
        request ??= new JobRequest();
        var steps = Math.Clamp(request.Steps, 1, 100);
        var stepDelay = TimeSpan.FromSeconds(Math.Clamp(request.StepSeconds, 0, 3600));
        var started = context.CurrentUtcDateTime;

        for (var step = 1; step <= steps; step++)
        {
            await context.CallActivityAsync(nameof(ProcessJobStep), step);

            // Custom status is stored with the instance and returned by GET /api/instances/{id}.
            context.SetCustomStatus(new JobProgress(step, steps, step * 100 / steps));

            if (step < steps && stepDelay > TimeSpan.Zero)
            {
                // A durable timer, not Task.Delay: the worker holds nothing in memory while the job waits.
                await context.CreateTimer(stepDelay, CancellationToken.None);
            }
        }

        return new JobResult(steps, context.CurrentUtcDateTime - started);
    }
}

/// <remarks>JSON: <c>{"steps": 5, "stepSeconds": 2}</c>.</remarks>
public sealed record JobRequest(int Steps = 5, double StepSeconds = 2);

public sealed record JobProgress(int Step, int Of, int Percent);

public sealed record JobResult(int Steps, TimeSpan Elapsed);

/// <summary>Stands in for one unit of real work.</summary>
public sealed class ProcessJobStep(ILogger<ProcessJobStep> logger) : TaskActivity<int, object?>
{
    public override Task<object?> RunAsync(TaskActivityContext context, int step)
    {
        logger.JobStep(context.InstanceId, step);
        return Task.FromResult<object?>(null);
    }
}
