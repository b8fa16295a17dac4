using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.TaskHubs;
using Grpc.Core;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Protocol;

public sealed partial class SidecarService
{
    public override async Task<SignalEntityResponse> SignalEntity(SignalEntityRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.EntityId(request.InstanceId);
        RequestRules.Name(request.Name, "name (the operation)");
        RequestRules.Payload(request.Input, "the input of operation", Limit, request.Name);
        if (request.RequestId.Length > 100) throw TaskHubException.Invalid("requestId is longer than 100 characters");
        if (request.ScheduledTime is { } ts) RequestRules.Timestamp(ts, "scheduledTime");
        await hub.SignalEntityAsync(request);
        return new SignalEntityResponse();
    }

    public override async Task<GetEntityResponse> GetEntity(GetEntityRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        RequestRules.EntityId(request.InstanceId);
        var entity = hub.GetEntity(request.InstanceId, request.IncludeState);
        return (entity is null ? new GetEntityResponse { Exists = false } : new GetEntityResponse { Exists = true, Entity = entity });
    }

    public override async Task<QueryEntitiesResponse> QueryEntities(QueryEntitiesRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        var query = request.Query ?? new EntityQuery();
        int pageSize = PageSize(query.PageSize ?? 0, "pageSize");
        var prefix = query.InstanceIdStartsWith;
        if (!string.IsNullOrEmpty(prefix))
        {
            if (prefix.Length > 400) throw TaskHubException.Invalid("instanceIdStartsWith is longer than 400 characters");
            prefix = RequestRules.EntityIdPrefix(prefix);
        }

        var (page, next) = hub.QueryEntities(prefix, Time(query.LastModifiedFrom, "lastModifiedFrom"), Time(query.LastModifiedTo, "lastModifiedTo"),
            query.IncludeState, query.IncludeTransient, pageSize, Cursor(query.ContinuationToken));
        var response = new QueryEntitiesResponse { ContinuationToken = next };
        response.Entities.AddRange(page);
        return (response);
    }

    public override async Task<CleanEntityStorageResponse> CleanEntityStorage(CleanEntityStorageRequest request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        var (removed, released) = await hub.CleanEntityStorageAsync(request.RemoveEmptyEntities, request.ReleaseOrphanedLocks);
        return new CleanEntityStorageResponse { EmptyEntitiesRemoved = removed, OrphanedLocksReleased = released };
    }

    public override async Task<CompleteTaskResponse> CompleteEntityTask(EntityBatchResult request, ServerCallContext context)
    {
        var hub = await hubs.ResolveAsync(context);
        await hub.CompleteEntityAsync(request, context.CancellationToken);
        return CompleteResponse;
    }
}
