using DurableTask.Core;
using DurableTask.Core.Query;

namespace DurableTask.Benchmarks.Backends;

/// <summary>
/// Forwards every call to the reference in-memory service and changes only its advertised concurrency limits.
/// </summary>
/// <remarks>
/// The reference service reports <see cref="Environment.ProcessorCount"/> for both limits, and the reference
/// dispatcher sleeps 500 ms whenever that many work items are in flight. With 5,000 orchestrations that throttle,
/// not the backend, would set the pace, so the comparison runs against this decorator instead.
/// </remarks>
sealed class UnthrottledOrchestrationService(IOrchestrationService service) :
    IOrchestrationService, IOrchestrationServiceClient, IOrchestrationServiceQueryClient, IOrchestrationServicePurgeClient
{
    public const int ConcurrencyLimit = 100_000;

    readonly IOrchestrationService _service = service;
    readonly IOrchestrationServiceClient _client = (IOrchestrationServiceClient)service;
    readonly IOrchestrationServiceQueryClient _query = (IOrchestrationServiceQueryClient)service;
    readonly IOrchestrationServicePurgeClient _purge = (IOrchestrationServicePurgeClient)service;

    public int MaxConcurrentTaskOrchestrationWorkItems => ConcurrencyLimit;
    public int MaxConcurrentTaskActivityWorkItems => ConcurrencyLimit;

    // IOrchestrationService
    public int TaskOrchestrationDispatcherCount => _service.TaskOrchestrationDispatcherCount;
    public BehaviorOnContinueAsNew EventBehaviourForContinueAsNew => _service.EventBehaviourForContinueAsNew;
    public int TaskActivityDispatcherCount => _service.TaskActivityDispatcherCount;
    public Task StartAsync() => _service.StartAsync();
    public Task StopAsync() => _service.StopAsync();
    public Task StopAsync(bool isForced) => _service.StopAsync(isForced);
    public Task CreateAsync() => _service.CreateAsync();
    public Task CreateAsync(bool recreateInstanceStore) => _service.CreateAsync(recreateInstanceStore);
    public Task CreateIfNotExistsAsync() => _service.CreateIfNotExistsAsync();
    public Task DeleteAsync() => _service.DeleteAsync();
    public Task DeleteAsync(bool deleteInstanceStore) => _service.DeleteAsync(deleteInstanceStore);

    public bool IsMaxMessageCountExceeded(int currentMessageCount, OrchestrationRuntimeState runtimeState) =>
        _service.IsMaxMessageCountExceeded(currentMessageCount, runtimeState);

    public int GetDelayInSecondsAfterOnProcessException(Exception exception) =>
        _service.GetDelayInSecondsAfterOnProcessException(exception);

    public int GetDelayInSecondsAfterOnFetchException(Exception exception) =>
        _service.GetDelayInSecondsAfterOnFetchException(exception);

    public Task<TaskOrchestrationWorkItem> LockNextTaskOrchestrationWorkItemAsync(TimeSpan receiveTimeout, CancellationToken cancellationToken) =>
        _service.LockNextTaskOrchestrationWorkItemAsync(receiveTimeout, cancellationToken);

    public Task RenewTaskOrchestrationWorkItemLockAsync(TaskOrchestrationWorkItem workItem) =>
        _service.RenewTaskOrchestrationWorkItemLockAsync(workItem);

    public Task CompleteTaskOrchestrationWorkItemAsync(
        TaskOrchestrationWorkItem workItem,
        OrchestrationRuntimeState newOrchestrationRuntimeState,
        IList<TaskMessage> outboundMessages,
        IList<TaskMessage> orchestratorMessages,
        IList<TaskMessage> timerMessages,
        TaskMessage continuedAsNewMessage,
        OrchestrationState orchestrationState) =>
        _service.CompleteTaskOrchestrationWorkItemAsync(
            workItem, newOrchestrationRuntimeState, outboundMessages, orchestratorMessages, timerMessages,
            continuedAsNewMessage, orchestrationState);

    public Task AbandonTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) =>
        _service.AbandonTaskOrchestrationWorkItemAsync(workItem);

    public Task ReleaseTaskOrchestrationWorkItemAsync(TaskOrchestrationWorkItem workItem) =>
        _service.ReleaseTaskOrchestrationWorkItemAsync(workItem);

    public Task<TaskActivityWorkItem> LockNextTaskActivityWorkItem(TimeSpan receiveTimeout, CancellationToken cancellationToken) =>
        _service.LockNextTaskActivityWorkItem(receiveTimeout, cancellationToken);

    public Task<TaskActivityWorkItem> RenewTaskActivityWorkItemLockAsync(TaskActivityWorkItem workItem) =>
        _service.RenewTaskActivityWorkItemLockAsync(workItem);

    public Task CompleteTaskActivityWorkItemAsync(TaskActivityWorkItem workItem, TaskMessage responseMessage) =>
        _service.CompleteTaskActivityWorkItemAsync(workItem, responseMessage);

    public Task AbandonTaskActivityWorkItemAsync(TaskActivityWorkItem workItem) =>
        _service.AbandonTaskActivityWorkItemAsync(workItem);

    // IOrchestrationServiceClient
    public Task CreateTaskOrchestrationAsync(TaskMessage creationMessage) =>
        _client.CreateTaskOrchestrationAsync(creationMessage);

    public Task CreateTaskOrchestrationAsync(TaskMessage creationMessage, OrchestrationStatus[] dedupeStatuses) =>
        _client.CreateTaskOrchestrationAsync(creationMessage, dedupeStatuses);

    public Task SendTaskOrchestrationMessageAsync(TaskMessage message) =>
        _client.SendTaskOrchestrationMessageAsync(message);

    public Task SendTaskOrchestrationMessageBatchAsync(params TaskMessage[] messages) =>
        _client.SendTaskOrchestrationMessageBatchAsync(messages);

    public Task<OrchestrationState> WaitForOrchestrationAsync(string instanceId, string executionId, TimeSpan timeout, CancellationToken cancellationToken) =>
        _client.WaitForOrchestrationAsync(instanceId, executionId, timeout, cancellationToken);

    public Task ForceTerminateTaskOrchestrationAsync(string instanceId, string reason) =>
        _client.ForceTerminateTaskOrchestrationAsync(instanceId, reason);

    public Task<IList<OrchestrationState>> GetOrchestrationStateAsync(string instanceId, bool allExecutions) =>
        _client.GetOrchestrationStateAsync(instanceId, allExecutions);

    public Task<OrchestrationState> GetOrchestrationStateAsync(string instanceId, string executionId) =>
        _client.GetOrchestrationStateAsync(instanceId, executionId);

    public Task<string> GetOrchestrationHistoryAsync(string instanceId, string executionId) =>
        _client.GetOrchestrationHistoryAsync(instanceId, executionId);

    public Task PurgeOrchestrationHistoryAsync(DateTime thresholdDateTimeUtc, OrchestrationStateTimeRangeFilterType timeRangeFilterType) =>
        _client.PurgeOrchestrationHistoryAsync(thresholdDateTimeUtc, timeRangeFilterType);

    // IOrchestrationServiceQueryClient
    public Task<OrchestrationQueryResult> GetOrchestrationWithQueryAsync(OrchestrationQuery query, CancellationToken cancellationToken) =>
        _query.GetOrchestrationWithQueryAsync(query, cancellationToken);

    // IOrchestrationServicePurgeClient
    public Task<PurgeResult> PurgeInstanceStateAsync(string instanceId) => _purge.PurgeInstanceStateAsync(instanceId);

    public Task<PurgeResult> PurgeInstanceStateAsync(PurgeInstanceFilter purgeInstanceFilter) =>
        _purge.PurgeInstanceStateAsync(purgeInstanceFilter);
}
