using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Monitor: poll an external system on a durable timer until a condition holds or a limit is reached. Each check is a
/// fresh execution started with continue-as-new, so the history stays small however long the monitor runs.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/JobMonitor</c> with body
/// <c>{"jobId": "export-42", "intervalSeconds": 5, "maxChecks": 10, "completesAfterChecks": 3}</c>.
/// The output is <c>{"jobId":"export-42","completed":true,"checks":3}</c>, or <c>completed: false</c> when the monitor
/// gave up after <c>maxChecks</c>. While it runs, the custom status shows the last check.
/// </remarks>
public sealed class JobMonitor : TaskOrchestrator<MonitorRequest?, MonitorResult>
{
    public override async Task<MonitorResult> RunAsync(TaskOrchestrationContext context, MonitorRequest? request)
    {
        request ??= new MonitorRequest();
        var check = request.Check + 1;
        var status = await context.CallActivityAsync<string>(nameof(CheckJobStatus), request with { Check = check });
        context.SetCustomStatus(new { check, status });

        if (status == CheckJobStatus.Done)
        {
            return new MonitorResult(request.JobId, Completed: true, Checks: check);
        }

        if (check >= request.MaxChecks)
        {
            return new MonitorResult(request.JobId, Completed: false, Checks: check);
        }

        await context.CreateTimer(TimeSpan.FromSeconds(Math.Max(0, request.IntervalSeconds)), CancellationToken.None);

        // Start over with a clean history; the return value of this execution is ignored.
        context.ContinueAsNew(request with { Check = check });
        return null!;
    }
}

/// <remarks>JSON: <c>{"jobId": "...", "intervalSeconds": 5, "maxChecks": 10, "completesAfterChecks": 3}</c>; <c>check</c> is carried between executions.</remarks>
public sealed record MonitorRequest(string JobId = "job", double IntervalSeconds = 5, int MaxChecks = 10, int CompletesAfterChecks = 3, int Check = 0);

public sealed record MonitorResult(string JobId, bool Completed, int Checks);

/// <summary>
/// Asks the external system for the job's status. The sample has no external system, so the job reports
/// <see cref="Done"/> on check number <see cref="MonitorRequest.CompletesAfterChecks"/>.
/// </summary>
public sealed class CheckJobStatus(ILogger<CheckJobStatus> logger) : TaskActivity<MonitorRequest, string>
{
    public const string Running = "Running";
    public const string Done = "Done";

    public override Task<string> RunAsync(TaskActivityContext context, MonitorRequest request)
    {
        var status = request.CompletesAfterChecks > 0 && request.Check >= request.CompletesAfterChecks ? Done : Running;
        logger.JobChecked(request.JobId, request.Check, status);
        return Task.FromResult(status);
    }
}
