using System.Net;

namespace DurableTask.Dashboard.Api;

/// <summary>An error answer of the scheduler API (a problem-details document), or a failure to reach it.</summary>
public sealed class SchedulerApiException(HttpStatusCode? status, string title, string detail) : Exception(detail)
{
    public HttpStatusCode? Status { get; } = status;
    public string Title { get; } = title;
    public string Detail => Message;

    public bool IsNotFound => Status == HttpStatusCode.NotFound;

    public override string ToString() => Status is { } s ? $"{(int)s} {Title}: {Detail}" : $"{Title}: {Detail}";
}
