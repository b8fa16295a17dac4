using DurableTask.Scheduler.Domain;

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
    /// <summary>
    /// The HTTP status and problem title for each of the task hub's outcomes: NotFound 404, Invalid and TooLarge 400,
    /// WrongState and AlreadyExists 409, LimitReached 429, StoreUnavailable and Moved 503.
    /// </summary>
    public static (int Status, string Title) StatusOf(TaskHubErrorKind kind) => kind switch
    {
        TaskHubErrorKind.NotFound => (StatusCodes.Status404NotFound, "Not found"),
        TaskHubErrorKind.Invalid or TaskHubErrorKind.TooLarge => (StatusCodes.Status400BadRequest, "Invalid request"),
        TaskHubErrorKind.WrongState => (StatusCodes.Status409Conflict, "Conflict"),
        TaskHubErrorKind.AlreadyExists => (StatusCodes.Status409Conflict, "Already exists"),
        TaskHubErrorKind.LimitReached => (StatusCodes.Status429TooManyRequests, "Too many requests"),
        TaskHubErrorKind.StoreUnavailable or TaskHubErrorKind.Moved => (StatusCodes.Status503ServiceUnavailable, "Unavailable"),
        _ => (StatusCodes.Status500InternalServerError, "Internal error"),
    };

    /// <summary>Turns a task hub outcome into problem details.</summary>
    public static IResult ToProblem(TaskHubException e, HttpContext context)
    {
        var (status, title) = StatusOf(e.Kind);
        return Problem(status, title, e.Message, context);
    }

    public static IResult Problem(int status, string title, string detail, HttpContext context) =>
        Results.Problem(detail: detail, statusCode: status, title: title, instance: context.Request.Path);
}
