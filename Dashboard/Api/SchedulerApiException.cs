using System.Net;

namespace DurableTask.Dashboard.Api;

/// <summary>An error answer of the scheduler API (a problem-details document), or a failure to reach it.</summary>
public sealed class SchedulerApiException(HttpStatusCode? status, string title, string detail, string? requiredPermission = null, string? hub = null)
    : Exception(detail)
{
    public HttpStatusCode? Status { get; } = status;
    public string Title { get; } = title;
    public string Detail => Message;

    /// <summary>For a refusal (403): the permission the call needed, <c>Read</c>, <c>ClientWrite</c> or <c>Admin</c>.</summary>
    public string? RequiredPermission { get; } = requiredPermission;

    /// <summary>For a refusal: the task hub the call addressed, if any.</summary>
    public string? Hub { get; } = hub;

    public bool IsNotFound => Status == HttpStatusCode.NotFound;
    public bool IsUnauthorized => Status == HttpStatusCode.Unauthorized;
    public bool IsForbidden => Status == HttpStatusCode.Forbidden;

    /// <summary>The roles that grant a permission (docs/security.md).</summary>
    public static string RolesFor(string? permission) => permission switch
    {
        "Read" => "reader, worker or contributor",
        "ClientWrite" => "worker or contributor",
        "WorkerProcess" => "worker or contributor",
        "Admin" => "contributor",
        _ => "a Durable Task role",
    };

    public override string ToString()
    {
        if (IsUnauthorized)
            return "401 Unauthorized: the scheduler does not accept your sign-in (it expired or was revoked). Sign in again.";
        if (IsForbidden)
        {
            string where = Hub is null ? "on any task hub" : $"on task hub '{Hub}'";
            return $"403 Forbidden: you lack the role {RolesFor(RequiredPermission)} {where} (this needs the {RequiredPermission ?? "required"} permission).";
        }

        return Status is { } s ? $"{(int)s} {Title}: {Detail}" : $"{Title}: {Detail}";
    }
}
