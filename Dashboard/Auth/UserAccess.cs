using DurableTask.Dashboard.Api;

namespace DurableTask.Dashboard.Auth;

/// <summary>
/// What the signed-in user may do per task hub, from the scheduler's <c>GET /api/v1/me</c>, read once per circuit.
/// Pages use it to hide actions the user may not take; the scheduler still checks every call.
/// </summary>
public sealed class UserAccess(SchedulerClient client)
{
    public const string Read = "Read";
    public const string ClientWrite = "ClientWrite";
    public const string WorkerProcess = "WorkerProcess";
    public const string Admin = "Admin";

    Task<CallerIdentity?>? _identity;

    /// <summary>The caller as the scheduler sees it; null when the scheduler has no <c>/api/v1/me</c> (then every action shows).</summary>
    public Task<CallerIdentity?> IdentityAsync() => _identity ??= LoadAsync();

    public async Task<bool> CanAsync(string hub, string permission)
    {
        var identity = await IdentityAsync();
        if (identity is null) return true;
        return identity.TaskHubs?.Any(h => string.Equals(h.Name, hub, StringComparison.OrdinalIgnoreCase)
            && h.Permissions.Contains(permission, StringComparer.OrdinalIgnoreCase)) == true;
    }

    async Task<CallerIdentity?> LoadAsync()
    {
        try
        {
            return await client.GetMeAsync();
        }
        catch (SchedulerApiException e) when (e.IsNotFound)
        {
            // An older scheduler without /api/v1/me: show every action and let the scheduler decide.
            return null;
        }
        catch (SchedulerApiException)
        {
            // Not signed in any more, or the scheduler is unreachable: show no actions, and ask again next time.
            _identity = null;
            return new CallerIdentity("", "", true, [], []);
        }
    }
}
