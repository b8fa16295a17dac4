using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Human interaction: ask someone for approval and wait for their answer (an external event) or a deadline, whichever
/// comes first. Waiting costs nothing: the orchestration is unloaded until the event or the timer arrives.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/ApprovalWorkflow</c> with body <c>{"item": "laptop", "timeoutSeconds": 60}</c>, then
/// answer with <c>POST /api/instances/{id}/raiseEvent/ApprovalDecision</c> and body
/// <c>{"approved": true, "approver": "alice"}</c>. Without an answer in time the request is escalated.
/// </remarks>
public sealed class ApprovalWorkflow : TaskOrchestrator<ApprovalRequest?, ApprovalOutcome>
{
    public const string DecisionEvent = "ApprovalDecision";

    public override async Task<ApprovalOutcome> RunAsync(TaskOrchestrationContext context, ApprovalRequest? request)
    {
        request ??= new ApprovalRequest();
        await context.CallActivityAsync(nameof(RequestApproval), request);
        context.SetCustomStatus("Awaiting approval");

        using var cancelTimer = new CancellationTokenSource();
        var deadline = context.CurrentUtcDateTime.AddSeconds(Math.Max(0, request.TimeoutSeconds));
        var timeout = context.CreateTimer(deadline, cancelTimer.Token);
        var decision = context.WaitForExternalEvent<ApprovalDecision>(DecisionEvent);

        if (await Task.WhenAny(decision, timeout) == decision)
        {
            // The answer came first: cancel the timer so the orchestration does not wait for it.
            cancelTimer.Cancel();
            var answer = decision.Result;
            context.SetCustomStatus(answer.Approved ? "Approved" : "Rejected");
            return new ApprovalOutcome(request.Item, answer.Approved ? "Approved" : "Rejected", answer.Approver);
        }

        context.SetCustomStatus("Timed out");
        await context.CallActivityAsync(nameof(EscalateApproval), request);
        return new ApprovalOutcome(request.Item, "TimedOut", null);
    }
}

/// <remarks>JSON: <c>{"item": "laptop", "timeoutSeconds": 60}</c>.</remarks>
public sealed record ApprovalRequest(string Item = "request", double TimeoutSeconds = 60);

/// <remarks>The event payload: <c>{"approved": true, "approver": "alice"}</c>.</remarks>
public sealed record ApprovalDecision(bool Approved, string? Approver);

/// <summary><c>Status</c> is <c>Approved</c>, <c>Rejected</c> or <c>TimedOut</c>.</summary>
public sealed record ApprovalOutcome(string Item, string Status, string? Approver);

/// <summary>Would send an e-mail or a chat message to the approvers.</summary>
public sealed class RequestApproval(ILogger<RequestApproval> logger) : TaskActivity<ApprovalRequest, object?>
{
    public override Task<object?> RunAsync(TaskActivityContext context, ApprovalRequest request)
    {
        logger.ApprovalRequested(request.Item, context.InstanceId);
        return Task.FromResult<object?>(null);
    }
}

/// <summary>Would notify a manager that nobody answered in time.</summary>
public sealed class EscalateApproval(ILogger<EscalateApproval> logger) : TaskActivity<ApprovalRequest, object?>
{
    public override Task<object?> RunAsync(TaskActivityContext context, ApprovalRequest request)
    {
        logger.ApprovalEscalated(request.Item, context.InstanceId);
        return Task.FromResult<object?>(null);
    }
}
