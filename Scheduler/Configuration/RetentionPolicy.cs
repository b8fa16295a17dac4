using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Configuration;

/// <summary>
/// How long finished instances are kept, in days, per terminal status. Off unless configured.
/// <code>
/// "Scheduler": { "Retention": { "*": { "Completed": 7, "Failed": 30, "Terminated": 7 }, "orders": { "Completed": 1 } } }
/// </code>
/// A task hub uses its own entry, else <c>*</c>. A status without a value is kept forever.
/// </summary>
public sealed class RetentionPolicy
{
    public double? Completed { get; set; }
    public double? Failed { get; set; }
    public double? Terminated { get; set; }

    public IEnumerable<(OrchestrationStatus Status, TimeSpan Age)> Rules()
    {
        if (Completed is > 0 and var c) yield return (OrchestrationStatus.Completed, TimeSpan.FromDays(c));
        if (Failed is > 0 and var f) yield return (OrchestrationStatus.Failed, TimeSpan.FromDays(f));
        if (Terminated is > 0 and var t) yield return (OrchestrationStatus.Terminated, TimeSpan.FromDays(t));
    }
}
