using DurableTask.Scheduler.TaskHubs;
using Grpc.Core;

namespace DurableTask.Scheduler.Protocol;

/// <summary>The task hub a gRPC call addresses, named by its <c>taskhub</c> header.</summary>
public static class CallHubs
{
    /// <summary>Finds the hub a call addresses, or fails it with NotFound (Invalid for a malformed name).</summary>
    public static ValueTask<TaskHub> ResolveAsync(this TaskHubRegistry hubs, ServerCallContext context) => hubs.ResolveAsync(HubName(context));

    /// <summary>
    /// The task hub a call names in its <c>taskhub</c> header; <c>default</c> without one. Read from the HTTP request
    /// headers: <see cref="ServerCallContext.RequestHeaders"/> would copy every header of every call into new metadata.
    /// </summary>
    public static string HubName(ServerCallContext context) => TaskHubRegistry.HubName(context.GetHttpContext().Request.Headers);
}
