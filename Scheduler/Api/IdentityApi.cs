using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.TaskHubs;

namespace DurableTask.Scheduler.Api;

/// <summary>The caller's identity and, per task hub, the permissions it holds (<c>GET /api/v1/me</c>).</summary>
public sealed record CallerIdentity(string Principal, string Name, bool AuthenticationEnabled, IReadOnlyList<string> Roles,
    IReadOnlyList<TaskHubPermissions> TaskHubs);

/// <summary>The permissions (<c>Read</c>, <c>ClientWrite</c>, <c>WorkerProcess</c>, <c>Admin</c>) a caller holds on one task hub.</summary>
public sealed record TaskHubPermissions(string Name, IReadOnlyList<string> Permissions);

/// <summary>
/// <c>GET /api/v1/me</c>: who the scheduler takes the caller for and what it may do on each task hub, decided by
/// <see cref="AccessControl"/> (the same check every call goes through). The dashboard uses it to hide actions the
/// caller may not take; the scheduler still checks every call.
/// </summary>
public static class IdentityApi
{
    public static WebApplication MapIdentityApi(this WebApplication app)
    {
        app.MapGet(SchedulerApi.Prefix + "/me", (HttpContext http, AccessControl access, TaskHubRegistry hubs, ScaleOut.HubOwnership ownership) =>
            {
                var user = http.User;
                bool authenticated = AccessControl.IsAuthenticated(user);
                var hubPermissions = hubs.Hubs
                    .Select(h => h.Name)
                    .Concat(ownership.RemoteHubs.Select(h => h.Hub))
                    .Distinct(StringComparer.OrdinalIgnoreCase)
                    .Order(StringComparer.OrdinalIgnoreCase)
                    .Select(name => new TaskHubPermissions(name,
                        Enum.GetValues<Permission>().Where(p => access.IsAllowed(user, p, name)).Select(p => p.ToString()).ToList()))
                    .Where(h => h.Permissions.Count > 0)
                    .ToList();
                var roles = access.AuthenticationEnabled && authenticated
                    ? access.AssignmentsOf(user).Select(a => a.ToString()).Distinct(StringComparer.OrdinalIgnoreCase).ToList()
                    : [];
                string principal = authenticated ? AccessControl.PrincipalId(user) ?? "unknown" : AccessControl.Anonymous;
                string name = authenticated ? AccessControl.Describe(user) : AccessControl.Anonymous;
                return Results.Json(new CallerIdentity(principal, name, access.AuthenticationEnabled, roles, hubPermissions), ApiJson.Options);
            })
            .RequirePermission(Permission.Read);
        return app;
    }
}
