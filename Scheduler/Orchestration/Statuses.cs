using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>Names and classes of orchestration statuses, as the SDKs and the dashboard show them.</summary>
public static class Statuses
{
    public static string Name(OrchestrationStatus status) => status switch
    {
        OrchestrationStatus.Running => "Running",
        OrchestrationStatus.Completed => "Completed",
        OrchestrationStatus.ContinuedAsNew => "ContinuedAsNew",
        OrchestrationStatus.Failed => "Failed",
        OrchestrationStatus.Canceled => "Canceled",
        OrchestrationStatus.Terminated => "Terminated",
        OrchestrationStatus.Pending => "Pending",
        OrchestrationStatus.Suspended => "Suspended",
        _ => status.ToString(),
    };

    public static bool IsTerminal(OrchestrationStatus status) => status is OrchestrationStatus.Completed
        or OrchestrationStatus.Failed or OrchestrationStatus.Terminated or OrchestrationStatus.Canceled;
}
