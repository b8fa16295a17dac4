namespace DurableTask.Scheduler.Diagnostics;

static partial class Logs
{
    [LoggerMessage(1, LogLevel.Error, "Timer callback failed in task hub '{Hub}'.")]
    public static partial void TimerFailed(ILogger logger, string hub, Exception ex);

    [LoggerMessage(2, LogLevel.Information, "Worker '{WorkerId}' connected to task hub '{Hub}'.")]
    public static partial void WorkerConnected(ILogger logger, string workerId, string hub);

    [LoggerMessage(3, LogLevel.Information, "Worker '{WorkerId}' disconnected from task hub '{Hub}'; {InFlight} work items will be redelivered unless completed.")]
    public static partial void WorkerDisconnected(ILogger logger, string workerId, string hub, int inFlight);

    [LoggerMessage(4, LogLevel.Warning, "Orchestration '{InstanceId}' in task hub '{Hub}' failed: {Reason}")]
    public static partial void OrchestrationRejected(ILogger logger, string instanceId, string hub, string reason);

    [LoggerMessage(6, LogLevel.Error, "Commit to the store of task hub '{Hub}' failed; retrying until it succeeds.")]
    public static partial void CommitFailed(ILogger logger, string hub, Exception ex);

    [LoggerMessage(7, LogLevel.Information, "The store of task hub '{Hub}' accepts commits again.")]
    public static partial void StoreRecovered(ILogger logger, string hub);

    [LoggerMessage(8, LogLevel.Warning, "The {Store} store cannot be reached yet; retrying in {Delay}.")]
    public static partial void StoreUnavailableAtStart(ILogger logger, string store, TimeSpan delay, Exception ex);

    [LoggerMessage(9, LogLevel.Warning, "The store of task hub '{Hub}' does not answer its health probe.")]
    public static partial void StoreProbeFailed(ILogger logger, string hub);

    [LoggerMessage(10, LogLevel.Information, "Retention purged {Count} {Status} instances from task hub '{Hub}'.")]
    public static partial void RetentionPurged(ILogger logger, int count, string status, string hub);

    [LoggerMessage(11, LogLevel.Warning, "Retention could not purge task hub '{Hub}'; it tries again at the next check.")]
    public static partial void RetentionFailed(ILogger logger, string hub, Exception ex);

    [LoggerMessage(5, LogLevel.Debug, "Ignored a completion with unknown or stale token '{Token}' in task hub '{Hub}'.")]
    public static partial void StaleCompletion(ILogger logger, string token, string hub);

    [LoggerMessage(12, LogLevel.Warning, "Task hub '{Hub}' stopped on this replica without committing more: {Reason}.")]
    public static partial void HubFenced(ILogger logger, string hub, string reason);

    [LoggerMessage(13, LogLevel.Information, "Replica '{Replica}' took the lease of task hub '{Hub}' (fence {Fence}).")]
    public static partial void LeaseAcquired(ILogger logger, string replica, string hub, long fence);

    [LoggerMessage(14, LogLevel.Warning, "Replica '{Replica}' lost the lease of task hub '{Hub}': {Reason}.")]
    public static partial void LeaseLost(ILogger logger, string replica, string hub, string reason);

    [LoggerMessage(15, LogLevel.Warning, "Replica '{Replica}' cannot reach the store for its hub leases; it keeps each until it would expire.")]
    public static partial void LeaseStoreUnavailable(ILogger logger, string replica, Exception ex);

    [LoggerMessage(16, LogLevel.Warning, "Replica '{Replica}' could not open task hub '{Hub}' after taking its lease; it gives the lease back.")]
    public static partial void LeasedOpenFailed(ILogger logger, string replica, string hub, Exception ex);

    [LoggerMessage(17, LogLevel.Information, "Replica '{Replica}' hands task hub '{Hub}' over: {Reason}.")]
    public static partial void LeaseHandedOver(ILogger logger, string replica, string hub, string reason);

    [LoggerMessage(18, LogLevel.Critical, "The commit loop of task hub '{Hub}' failed; the hub takes no more changes until the scheduler restarts.")]
    public static partial void CommitLoopFailed(ILogger logger, string hub, Exception ex);

    [LoggerMessage(19, LogLevel.Error, "Error when executing service method '{Method}'.")]
    public static partial void DirectCallFailed(ILogger logger, string method, Exception ex);

    [LoggerMessage(20, LogLevel.Information, "Idle after a burst: gave memory back ({Before} MiB held by the garbage collector, {After} MiB after).")]
    public static partial void MemoryTrimmed(ILogger logger, long before, long after);
}
