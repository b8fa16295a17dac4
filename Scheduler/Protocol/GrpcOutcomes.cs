using DurableTask.Scheduler.Domain;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace DurableTask.Scheduler.Protocol;

/// <summary>
/// Answers the task hub's outcomes (<see cref="TaskHubException"/>) as gRPC statuses, with the exception's message as
/// the status detail. Handlers are wrapped once, when the service is bound, so no handler repeats a try/catch.
/// </summary>
public static class GrpcOutcomes
{
    /// <summary>The status code for each kind: the codes the SDKs expect (retrying on Unavailable and ResourceExhausted).</summary>
    public static StatusCode Code(TaskHubErrorKind kind) => kind switch
    {
        TaskHubErrorKind.NotFound => StatusCode.NotFound,
        TaskHubErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        TaskHubErrorKind.WrongState => StatusCode.FailedPrecondition,
        TaskHubErrorKind.Invalid or TaskHubErrorKind.TooLarge => StatusCode.InvalidArgument,
        TaskHubErrorKind.StoreUnavailable or TaskHubErrorKind.Moved => StatusCode.Unavailable,
        TaskHubErrorKind.LimitReached => StatusCode.ResourceExhausted,
        _ => StatusCode.Unknown,
    };

    public static Status ToStatus(TaskHubException e) => new(Code(e.Kind), e.Message);

    public static RpcException ToRpcException(TaskHubException e) => new(ToStatus(e));

    public static RpcException ToRpcException(TaskHubErrorKind kind, string message) => new(new Status(Code(kind), message));

    /// <summary>
    /// A unary handler whose task hub outcomes become <see cref="RpcException"/>s; the handler's own task when it
    /// succeeded at once. The work item completions, the hot path, answer with statuses themselves and are not wrapped.
    /// </summary>
    public static UnaryServerMethod<TService, TRequest, TResponse> Map<TService, TRequest, TResponse>(IMethod method,
        UnaryServerMethod<TService, TRequest, TResponse> handler) where TRequest : class where TResponse : class =>
        SidecarService.MapsOwnOutcomes(method) ? handler : (service, request, context) =>
        {
            Task<TResponse> call;
            try
            {
                call = handler(service, request, context);
            }
            catch (TaskHubException e)
            {
                throw ToRpcException(e);
            }

            return call.IsCompletedSuccessfully ? call : Mapped(call);
        };

    /// <summary>A server-streaming handler whose task hub outcomes become <see cref="RpcException"/>s.</summary>
    public static ServerStreamingServerMethod<TService, TRequest, TResponse> Map<TService, TRequest, TResponse>(IMethod method,
        ServerStreamingServerMethod<TService, TRequest, TResponse> handler) where TRequest : class where TResponse : class =>
        (service, request, stream, context) =>
        {
            Task call;
            try
            {
                call = handler(service, request, stream, context);
            }
            catch (TaskHubException e)
            {
                throw ToRpcException(e);
            }

            return call.IsCompletedSuccessfully ? call : Mapped(call);
        };

    static async Task<TResponse> Mapped<TResponse>(Task<TResponse> call)
    {
        try
        {
            return await call.ConfigureAwait(false);
        }
        catch (TaskHubException e)
        {
            throw ToRpcException(e);
        }
    }

    static async Task Mapped(Task call)
    {
        try
        {
            await call.ConfigureAwait(false);
        }
        catch (TaskHubException e)
        {
            throw ToRpcException(e);
        }
    }
}
