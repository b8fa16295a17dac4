using Grpc.Core;
using Microsoft.AspNetCore.Diagnostics;

namespace SampleFunctionApp.Api;

/// <summary>
/// Turns a failed call to the scheduler into a problem response that says what happened, e.g. 503 when the
/// scheduler cannot be reached, instead of a bare 500.
/// </summary>
public sealed class SchedulerErrorHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var rpc = exception as RpcException ?? exception.InnerException as RpcException;
        if (rpc is null)
        {
            return false;
        }

        httpContext.Response.StatusCode = rpc.StatusCode switch
        {
            StatusCode.NotFound => StatusCodes.Status404NotFound,
            StatusCode.InvalidArgument or StatusCode.OutOfRange => StatusCodes.Status400BadRequest,
            StatusCode.AlreadyExists or StatusCode.FailedPrecondition => StatusCodes.Status409Conflict,
            StatusCode.ResourceExhausted => StatusCodes.Status429TooManyRequests,
            StatusCode.Unimplemented => StatusCodes.Status501NotImplemented,
            StatusCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
            StatusCode.DeadlineExceeded => StatusCodes.Status504GatewayTimeout,
            _ => StatusCodes.Status502BadGateway,
        };

        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = httpContext.Response.StatusCode,
                Title = $"The scheduler answered {rpc.StatusCode}.",
                Detail = rpc.Status.Detail,
            },
        });
    }
}
