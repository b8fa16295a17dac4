namespace SampleFunctionApp;

/// <summary>The sample activities' log messages. Event ids are stable: 1xx patterns, 2xx hosting.</summary>
static partial class Logs
{
    [LoggerMessage(100, LogLevel.Information, "Saying hello to {Name} for orchestration {InstanceId}.")]
    public static partial void SayingHello(this ILogger logger, string name, string instanceId);

    [LoggerMessage(101, LogLevel.Information, "Job {InstanceId}: step {Step} done.")]
    public static partial void JobStep(this ILogger logger, string instanceId, int step);

    [LoggerMessage(102, LogLevel.Information, "Job {JobId}, check {Check}: {Status}.")]
    public static partial void JobChecked(this ILogger logger, string jobId, int check, string status);

    [LoggerMessage(103, LogLevel.Information, "Approval of {Item} requested by orchestration {InstanceId}.")]
    public static partial void ApprovalRequested(this ILogger logger, string item, string instanceId);

    [LoggerMessage(104, LogLevel.Warning, "Nobody approved {Item} in time (orchestration {InstanceId}); escalating.")]
    public static partial void ApprovalEscalated(this ILogger logger, string item, string instanceId);

    [LoggerMessage(105, LogLevel.Information, "Stock reserved for order {OrderId}.")]
    public static partial void StockReserved(this ILogger logger, string orderId);

    [LoggerMessage(106, LogLevel.Warning, "Payment for order {OrderId} failed on attempt {Attempt}.")]
    public static partial void PaymentFailed(this ILogger logger, string orderId, int attempt);

    [LoggerMessage(107, LogLevel.Information, "Charged {Amount} for order {OrderId} on attempt {Attempt}.")]
    public static partial void PaymentCharged(this ILogger logger, string orderId, decimal amount, int attempt);

    [LoggerMessage(108, LogLevel.Information, "Cleanup iteration {Iteration} removed {Removed} records.")]
    public static partial void CleanupRan(this ILogger logger, int iteration, int removed);

    [LoggerMessage(200, LogLevel.Information, "Durable Task worker and client use scheduler {Address}, task hub '{TaskHub}'.")]
    public static partial void UsingScheduler(this ILogger logger, Uri address, string taskHub);
}
