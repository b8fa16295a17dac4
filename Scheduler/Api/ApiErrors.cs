using Grpc.Core;

namespace DurableTask.Scheduler.Api;

/// <summary>A request the API rejects before it reaches a task hub; answered as an RFC 7807 problem.</summary>
public sealed class ApiException(int statusCode, string title, string detail) : Exception(detail)
{
    public int StatusCode { get; } = statusCode;
    public string Title { get; } = title;

    public static ApiException BadRequest(string detail) => new(StatusCodes.Status400BadRequest, "Invalid request", detail);

    public static ApiException NotFound(string detail) => new(StatusCodes.Status404NotFound, "Not found", detail);
}

static class ApiErrors
{
    /// <summary>Turns the task hub's status codes into problem details: NotFound 404, InvalidArgument 400, FailedPrecondition and AlreadyExists 409.</summary>
    public static IResult ToProblem(RpcException e, HttpContext context)
    {
        var (status, title) = e.StatusCode switch
        {
            Grpc.Core.StatusCode.NotFound => (StatusCodes.Status404NotFound, "Not found"),
            Grpc.Core.StatusCode.InvalidArgument => (StatusCodes.Status400BadRequest, "Invalid request"),
            Grpc.Core.StatusCode.FailedPrecondition => (StatusCodes.Status409Conflict, "Conflict"),
            Grpc.Core.StatusCode.AlreadyExists => (StatusCodes.Status409Conflict, "Already exists"),
            Grpc.Core.StatusCode.ResourceExhausted => (StatusCodes.Status429TooManyRequests, "Too many requests"),
            Grpc.Core.StatusCode.Unavailable => (StatusCodes.Status503ServiceUnavailable, "Unavailable"),
            _ => (StatusCodes.Status500InternalServerError, "Internal error"),
        };
        return Problem(status, title, e.Status.Detail, context);
    }

    public static IResult Problem(int status, string title, string detail, HttpContext context) =>
        Results.Problem(detail: detail, statusCode: status, title: title, instance: context.Request.Path);
}
