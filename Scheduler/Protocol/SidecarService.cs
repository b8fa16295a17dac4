using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Protocol.Wire;
using DurableTask.Scheduler.TaskHubs;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Protocol;

/// <summary>
/// The <c>TaskHubSidecarService</c> the SDKs call. It validates input (<see cref="RequestRules"/>), resolves the task
/// hub from the <c>taskhub</c> header and maps requests onto the hub; it holds no state of its own. The hub's outcomes
/// (<see cref="TaskHubException"/>) become statuses in <see cref="GrpcOutcomes"/>, which wraps each handler when the
/// service is bound.
/// </summary>
public sealed partial class SidecarService(TaskHubRegistry hubs, SchedulerOptions options, IHostApplicationLifetime lifetime)
    : TaskHubSidecarService.TaskHubSidecarServiceBase
{
    static readonly Empty EmptyResponse = new();
    static readonly CompleteTaskResponse CompleteResponse = new();
    static readonly OutboundWorkItem HealthPingItem = new(new WorkItem { HealthPing = new HealthPing() });
    static readonly WriteOptions Buffered = new(WriteFlags.BufferHint);
    const int MaxBurst = 64;

    int Limit => options.MaxPayloadBytes;

    public override async Task<Empty> Hello(Empty request, ServerCallContext context)
    {
        await hubs.ResolveAsync(context);
        return (EmptyResponse);
    }

    public override async Task<CreateInstanceResponse> StartInstance(CreateInstanceRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        if (string.IsNullOrEmpty(request.InstanceId)) request.InstanceId = Guid.NewGuid().ToString("N");
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Name(request.Name);
        RequestRules.Payload(request.Input, "input", Limit);
        RequestRules.Tags(request.Tags);
        if (request.ExecutionId is { Length: > 100 }) throw TaskHubException.Invalid("executionId is longer than 100 characters");
        if (request.ScheduledStartTimestamp is not null)
            request.ScheduledStartTimestamp = RequestRules.Scheduled(request.ScheduledStartTimestamp, "scheduledStartTimestamp");

        return new CreateInstanceResponse { InstanceId = await hub.StartInstanceAsync(request, context.CancellationToken) };
    }

    public override async Task<GetInstanceResponse> GetInstance(GetInstanceRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        var state = await hub.GetCommittedStateAsync(request.InstanceId, request.GetInputsAndOutputs, context.CancellationToken);
        return (state is null ? new GetInstanceResponse { Exists = false } : new GetInstanceResponse { Exists = true, OrchestrationState = Answer(state, request.GetInputsAndOutputs) });
    }

    public override Task<GetInstanceResponse> WaitForInstanceStart(GetInstanceRequest request, ServerCallContext context) =>
        Wait(request, context, untilCompletion: false);

    public override Task<GetInstanceResponse> WaitForInstanceCompletion(GetInstanceRequest request, ServerCallContext context) =>
        Wait(request, context, untilCompletion: true);

    async Task<GetInstanceResponse> Wait(GetInstanceRequest request, ServerCallContext context, bool untilCompletion)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        try
        {
            var state = await hub.WaitAsync(request.InstanceId, untilCompletion, request.GetInputsAndOutputs, context.CancellationToken);
            return new GetInstanceResponse { Exists = true, OrchestrationState = Answer(state, request.GetInputsAndOutputs) };
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "the wait was cancelled by the caller"));
        }
    }

    public override async Task<RaiseEventResponse> RaiseEvent(RaiseEventRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Name(request.Name);
        RequestRules.Payload(request.Input, "the payload of event", Limit, request.Name);
        await hub.RaiseEventAsync(request.InstanceId, request.Name, request.Input, context.CancellationToken);
        return new RaiseEventResponse();
    }

    public override async Task<TerminateResponse> TerminateInstance(TerminateRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Payload(request.Output, "output", Limit);
        await hub.TerminateAsync(request.InstanceId, request.Output, request.Recursive, context.CancellationToken);
        return new TerminateResponse();
    }

    public override async Task<SuspendResponse> SuspendInstance(SuspendRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Payload(request.Reason, "reason", Limit);
        await hub.SuspendAsync(request.InstanceId, request.Reason, context.CancellationToken);
        return new SuspendResponse();
    }

    public override async Task<ResumeResponse> ResumeInstance(ResumeRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Payload(request.Reason, "reason", Limit);
        await hub.ResumeAsync(request.InstanceId, request.Reason, context.CancellationToken);
        return new ResumeResponse();
    }

    public override async Task<RestartInstanceResponse> RestartInstance(RestartInstanceRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        return new RestartInstanceResponse { InstanceId = await hub.RestartAsync(request.InstanceId, request.RestartWithNewInstanceId, context.CancellationToken) };
    }

    public override async Task<RewindInstanceResponse> RewindInstance(RewindInstanceRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        RequestRules.Payload(request.Reason, "reason", Limit);
        await hub.RewindAsync(request.InstanceId, request.Reason, context.CancellationToken);
        return new RewindInstanceResponse();
    }

    public override async Task<QueryInstancesResponse> QueryInstances(QueryInstancesRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        var query = request.Query ?? new InstanceQuery();
        int pageSize = PageSize(query.MaxInstanceCount, "maxInstanceCount");
        var filter = new TaskHub.InstanceFilter(
            Statuses: query.RuntimeStatus.Count > 0 ? query.RuntimeStatus.ToHashSet() : null,
            CreatedFrom: Time(query.CreatedTimeFrom, "createdTimeFrom"),
            CreatedTo: Time(query.CreatedTimeTo, "createdTimeTo"),
            Prefix: query.InstanceIdPrefix);
        var (page, next) = await hub.QueryAsync(filter, pageSize, Cursor(query.ContinuationToken), query.FetchInputsAndOutputs, context.CancellationToken);
        var response = new QueryInstancesResponse { ContinuationToken = next };
        foreach (var state in page) response.OrchestrationState.Add(Answer(state, query.FetchInputsAndOutputs));
        return (response);
    }

    public override async Task<ListInstanceIdsResponse> ListInstanceIds(ListInstanceIdsRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        int pageSize = PageSize(request.PageSize, "pageSize");
        var filter = new TaskHub.InstanceFilter(
            Statuses: request.RuntimeStatus.Count > 0 ? request.RuntimeStatus.ToHashSet() : null,
            CompletedFrom: Time(request.CompletedTimeFrom, "completedTimeFrom"),
            CompletedTo: Time(request.CompletedTimeTo, "completedTimeTo"));
        var (ids, next) = await hub.ListIdsAsync(filter, pageSize, Cursor(request.LastInstanceKey), context.CancellationToken);
        var response = new ListInstanceIdsResponse { LastInstanceKey = next };
        response.InstanceIds.AddRange(ids);
        return (response);
    }

    public override async Task<PurgeInstancesResponse> PurgeInstances(PurgeInstancesRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        switch (request.RequestCase)
        {
            // isOrchestration is set by the .NET SDK only: an id shaped like an entity's names an orchestration when it
            // is true (entities off in the client), an entity otherwise (other SDKs leave it false for orchestrations).
            case PurgeInstancesRequest.RequestOneofCase.InstanceId when !request.IsOrchestration && EntityIds.IsEntityId(request.InstanceId):
                RequestRules.EntityId(request.InstanceId);
                return new PurgeInstancesResponse { DeletedInstanceCount = await hub.PurgeEntityAsync(request.InstanceId), IsComplete = true };

            case PurgeInstancesRequest.RequestOneofCase.InstanceId:
                RequestRules.InstanceId(request.InstanceId);
                return new PurgeInstancesResponse { DeletedInstanceCount = await hub.PurgeAsync(request.InstanceId, request.Recursive, context.CancellationToken), IsComplete = true };

            case PurgeInstancesRequest.RequestOneofCase.PurgeInstanceFilter:
                var f = request.PurgeInstanceFilter;
                var filter = new TaskHub.InstanceFilter(
                    Statuses: f.RuntimeStatus.Count > 0 ? f.RuntimeStatus.ToHashSet() : null,
                    CreatedFrom: Time(f.CreatedTimeFrom, "createdTimeFrom"),
                    CreatedTo: Time(f.CreatedTimeTo, "createdTimeTo"));
                TimeSpan? timeout = null;
                if (f.Timeout is { } d)
                {
                    if (d.Seconds < 0 || d.Nanos < 0) throw TaskHubException.Invalid("timeout must not be negative");
                    if (d.Nanos > 999_999_999) throw TaskHubException.Invalid($"timeout has {d.Nanos} nanoseconds; at most 999999999 are allowed");
                    if (d.Seconds > MaxPurgeTimeoutSeconds) throw TaskHubException.Invalid($"timeout is {d.Seconds} s; the limit is {MaxPurgeTimeoutSeconds} s");
                    timeout = d.ToTimeSpan();
                }

                var (deleted, complete) = await hub.PurgeAsync(filter, request.Recursive, timeout, context.CancellationToken);
                return new PurgeInstancesResponse { DeletedInstanceCount = deleted, IsComplete = complete };

            case PurgeInstancesRequest.RequestOneofCase.InstanceBatch:
                var ids = Batch(request.InstanceBatch);
                return new PurgeInstancesResponse { DeletedInstanceCount = await hub.PurgeAsync(ids, request.Recursive, context.CancellationToken), IsComplete = true };

            default:
                throw TaskHubException.Invalid("a purge request needs an instanceId, a purgeInstanceFilter or an instanceBatch");
        }
    }

    /// <summary>
    /// Emergency termination: each instance of the batch ends as terminated at once, without its orchestrator code
    /// running again (<see cref="TaskHub.TerminateAtOnceAsync"/>). The answer names the instances left alone.
    /// </summary>
    public override async Task<SkipGracefulOrchestrationTerminationsResponse> SkipGracefulOrchestrationTerminations(
        SkipGracefulOrchestrationTerminationsRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        if (request.InstanceBatch is null) throw TaskHubException.Invalid("instanceBatch is required");
        var ids = Batch(request.InstanceBatch);
        RequestRules.Payload(request.Reason, "reason", Limit);
        var response = new SkipGracefulOrchestrationTerminationsResponse();
        response.UnterminatedInstanceIds.AddRange(await hub.TerminateAtOnceAsync(ids, request.Reason, context.CancellationToken));
        return response;
    }

    /// <summary>The instance ids of a batch: at most <see cref="MaxBatch"/>, each a valid id.</summary>
    static IReadOnlyList<string> Batch(InstanceBatch batch)
    {
        var ids = batch.InstanceIds;
        if (ids.Count > MaxBatch) throw TaskHubException.Invalid($"instanceBatch has {ids.Count} instance ids; the limit is {MaxBatch}");
        foreach (var id in ids) RequestRules.InstanceId(id, "instanceBatch.instanceIds");
        return ids;
    }

    const int MaxBatch = 500;

    public override async Task StreamInstanceHistory(StreamInstanceHistoryRequest request, IServerStreamWriter<HistoryChunk> responseStream, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.InstanceId(request.InstanceId);
        var history = await hub.GetHistoryAsync(request.InstanceId, request.ExecutionId, context.CancellationToken) ?? throw TaskHubException.InstanceNotFound(request.InstanceId);
        var chunk = new HistoryChunk();
        int size = 0;
        foreach (var e in history)
        {
            int eventSize = e.CalculateSize();
            if (chunk.Events.Count > 0 && size + eventSize > options.HistoryChunkBytes)
            {
                await responseStream.WriteAsync(chunk, context.CancellationToken);
                chunk = new HistoryChunk();
                size = 0;
            }

            chunk.Events.Add(e);
            size += eventSize;
        }

        if (chunk.Events.Count > 0 || history.Count == 0) await responseStream.WriteAsync(chunk, context.CancellationToken);
    }

    /// <summary>
    /// <c>GetWorkItems</c>, bound with a response marshaller that writes orchestrator work items with their past
    /// events already encoded (<see cref="OutboundWorkItem"/>); on the wire the messages are plain <c>WorkItem</c>s.
    /// </summary>
    public async Task StreamWorkItems(GetWorkItemsRequest request, IServerStreamWriter<OutboundWorkItem> responseStream, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        ValidateConcurrency(request.MaxConcurrentOrchestrationWorkItems, "maxConcurrentOrchestrationWorkItems");
        ValidateConcurrency(request.MaxConcurrentActivityWorkItems, "maxConcurrentActivityWorkItems");
        ValidateConcurrency(request.MaxConcurrentEntityWorkItems, "maxConcurrentEntityWorkItems");
        string workerId = context.RequestHeaders.GetValue("workerid") is { Length: > 0 and <= 256 } id ? id : $"{context.Peer}/{Guid.NewGuid():N}";

        var worker = hub.Connect(workerId, request);
        var writer = worker.Outbox.Writer;
        using var ping = new Timer(_ => writer.TryWrite(HealthPingItem), null, options.HealthPingInterval, options.HealthPingInterval);
        using var stopping = lifetime.ApplicationStopping.Register(() => writer.TryComplete());
        var reader = worker.Outbox.Reader;
        var cancellation = context.CancellationToken;
        try
        {
            // The first message tells the worker the stream is live.
            await responseStream.WriteAsync(HealthPingItem, cancellation);
            // Work items go out in bursts, one flush each: a worker then reads many per wake-up instead of one. Before
            // flushing a burst the writer yields once, so completions being handled right now can add the work they
            // release to it; a long burst is flushed every MaxBurst items.
            int unflushed = 0;
            bool yielded = false;
            while (await reader.WaitToReadAsync(cancellation))
            {
                while (reader.TryRead(out var item))
                {
                    bool more = reader.TryPeek(out _);
                    if (!more && !yielded)
                    {
                        yielded = true;
                        await Task.Yield();
                        more = reader.TryPeek(out _);
                    }

                    bool flush = !more || ++unflushed >= MaxBurst;
                    context.WriteOptions = flush ? null : Buffered;
                    await responseStream.WriteAsync(item, cancellation);
                    if (flush)
                    {
                        unflushed = 0;
                        yielded = false;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // The worker went away; its in-flight work is redelivered.
        }
        catch (InvalidOperationException) when (cancellation.IsCancellationRequested)
        {
            // Writing after the client disconnected.
        }
        finally
        {
            hub.Disconnect(worker);
        }
    }

    /// <summary>
    /// True for the work item completions, the hot path: they answer the hub's outcomes as statuses themselves (inside
    /// the async methods they have anyway), so that <see cref="GrpcOutcomes"/> need not wrap them in another.
    /// </summary>
    internal static bool MapsOwnOutcomes(IMethod method) =>
        method.ServiceName == TaskHubSidecarService.Descriptor.FullName && method.Name is nameof(CompleteActivityTask) or nameof(CompleteOrchestratorTask);

    public override Task<CompleteTaskResponse> CompleteActivityTask(ActivityResponse request, ServerCallContext context) =>
        CompleteActivity(request, CallHubs.HubName(context));

    /// <summary>An activity completion for the task hub named <paramref name="hubName"/> (also served by <see cref="DirectCompletions"/>).</summary>
    public Task<CompleteTaskResponse> CompleteActivity(ActivityResponse request, string hubName)
    {
        try
        {
            var resolve = hubs.ResolveAsync(hubName);
            if (!resolve.IsCompletedSuccessfully) return Slow(resolve, request);
            var hub = resolve.Result;
            hub.EnsureWritable();
            return Completed(hub.CompleteActivity(request), hub.FlushAsync());
        }
        catch (TaskHubException e)
        {
            throw GrpcOutcomes.ToRpcException(e);
        }

        static async Task<CompleteTaskResponse> Slow(ValueTask<TaskHub> resolve, ActivityResponse request)
        {
            TaskHub hub;
            try
            {
                hub = await resolve;
                hub.EnsureWritable();
            }
            catch (TaskHubException e)
            {
                throw GrpcOutcomes.ToRpcException(e);
            }

            return await Completed(hub.CompleteActivity(request), hub.FlushAsync());
        }
    }

    static readonly Task<CompleteTaskResponse> CompletedTask = Task.FromResult(CompleteResponse);

    /// <summary>Answers a completion once it is durable; the common case (already durable, no violation) allocates nothing.</summary>
    static Task<CompleteTaskResponse> Completed(string? violation, Task flush)
    {
        if (flush.IsCompletedSuccessfully)
            return violation is null ? CompletedTask : Task.FromException<CompleteTaskResponse>(GrpcOutcomes.ToRpcException(TaskHubErrorKind.Invalid, violation));
        return Await(violation, flush);

        static async Task<CompleteTaskResponse> Await(string? violation, Task flush)
        {
            try
            {
                await flush;
            }
            catch (TaskHubException e)
            {
                throw GrpcOutcomes.ToRpcException(e);
            }

            if (violation is not null) throw GrpcOutcomes.ToRpcException(TaskHubErrorKind.Invalid, violation);
            return CompleteResponse;
        }
    }

    public override Task<CompleteTaskResponse> CompleteOrchestratorTask(OrchestratorResponse request, ServerCallContext context) =>
        CompleteOrchestrator(request, CallHubs.HubName(context), context.CancellationToken);

    /// <summary>An orchestrator completion for the task hub named <paramref name="hubName"/> (also served by <see cref="DirectCompletions"/>).</summary>
    public Task<CompleteTaskResponse> CompleteOrchestrator(OrchestratorResponse request, string hubName, CancellationToken cancellationToken)
    {
        try
        {
            var resolve = hubs.ResolveAsync(hubName);
            if (!resolve.IsCompletedSuccessfully) return Slow(resolve, request, cancellationToken);
            var hub = resolve.Result;
            hub.EnsureWritable();
            var preload = hub.PreloadAsync(request, cancellationToken);
            if (!preload.IsCompletedSuccessfully) return Loaded(hub, preload, request);
            return Completed(hub.CompleteOrchestration(request), hub.FlushAsync());
        }
        catch (TaskHubException e)
        {
            throw GrpcOutcomes.ToRpcException(e);
        }

        static async Task<CompleteTaskResponse> Slow(ValueTask<TaskHub> resolve, OrchestratorResponse request, CancellationToken cancellationToken)
        {
            TaskHub hub;
            try
            {
                hub = await resolve;
                hub.EnsureWritable();
                await hub.PreloadAsync(request, cancellationToken);
            }
            catch (TaskHubException e)
            {
                throw GrpcOutcomes.ToRpcException(e);
            }

            return await Completed(hub.CompleteOrchestration(request), hub.FlushAsync());
        }

        static async Task<CompleteTaskResponse> Loaded(TaskHub hub, ValueTask preload, OrchestratorResponse request)
        {
            try
            {
                await preload;
            }
            catch (TaskHubException e)
            {
                throw GrpcOutcomes.ToRpcException(e);
            }

            return await Completed(hub.CompleteOrchestration(request), hub.FlushAsync());
        }
    }

    public override async Task<AbandonActivityTaskResponse> AbandonTaskActivityWorkItem(AbandonActivityTaskRequest request, ServerCallContext context)
    {
        (await hubs.ResolveAsync(context)).AbandonWorkItem(request.CompletionToken);
        return (new AbandonActivityTaskResponse());
    }

    public override async Task<AbandonOrchestrationTaskResponse> AbandonTaskOrchestratorWorkItem(AbandonOrchestrationTaskRequest request, ServerCallContext context)
    {
        (await hubs.ResolveAsync(context)).AbandonWorkItem(request.CompletionToken);
        return (new AbandonOrchestrationTaskResponse());
    }

    public override async Task<AbandonEntityTaskResponse> AbandonTaskEntityWorkItem(AbandonEntityTaskRequest request, ServerCallContext context)
    {
        (await hubs.ResolveAsync(context)).AbandonWorkItem(request.CompletionToken);
        return (new AbandonEntityTaskResponse());
    }

    public override async Task<CreateTaskHubResponse> CreateTaskHub(CreateTaskHubRequest request, ServerCallContext context)
    {
        await hubs.ResolveAsync(context);
        // Recreating would delete every instance of the hub; a caller asking for it is told, not given the old hub.
        if (request.RecreateIfExists)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented,
                "CreateTaskHub with recreateIfExists is not supported: the hub is never deleted; purge its instances instead"));
        }

        return (new CreateTaskHubResponse());
    }

    public override async Task<DeleteTaskHubResponse> DeleteTaskHub(DeleteTaskHubRequest request, ServerCallContext context)
    {
        await hubs.ResolveAsync(context);
        throw new RpcException(new Status(StatusCode.Unimplemented,
            "DeleteTaskHub is not supported; purge instances instead, or remove the hub from DTS_TASK_HUB_NAMES"));
    }

    /// <summary>
    /// An instance's state as the SDKs expect it: without payloads (<c>getInputsAndOutputs</c> or
    /// <c>fetchInputsAndOutputs</c> false) it carries neither input, output and custom status nor the failure details;
    /// the status still says <c>Failed</c>. The JSON API shows the failure in its lists, so the hub keeps it and this
    /// edge leaves it out.
    /// </summary>
    static OrchestrationState Answer(OrchestrationState state, bool withPayloads)
    {
        if (!withPayloads) state.FailureDetails = null;
        return state;
    }

    static void ValidateConcurrency(int value, string field)
    {
        if (value < 0) throw TaskHubException.Invalid($"{field} must not be negative (got {value})");
    }

    static int PageSize(int requested, string field)
    {
        if (requested < 0) throw TaskHubException.Invalid($"{field} must not be negative (got {requested})");
        if (requested == 0) return 100;
        return Math.Min(requested, TaskHub.MaxPageSize);
    }

    static string? Cursor(string? token)
    {
        if (string.IsNullOrEmpty(token)) return null;
        if (token.Length > 1024) throw TaskHubException.Invalid("continuationToken is not a token this scheduler issued");
        return token;
    }

    static DateTime? Time(Timestamp? ts, string field)
    {
        if (ts is null) return null;
        RequestRules.Timestamp(ts, field);
        var value = ts.ToDateTime();
        return value == DateTime.UnixEpoch && ts.Seconds == 0 && ts.Nanos == 0 ? null : value;
    }

    const long MaxPurgeTimeoutSeconds = 24 * 3600;
}
