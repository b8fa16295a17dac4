using System.Security.Claims;

namespace DurableTask.Scheduler.Security;

/// <summary>
/// Decides what a caller may do on a task hub: the union of the roles its token or API key carries (role claim values such as
/// <c>worker</c> or <c>reader:orders</c>) and the role assignments in <c>Scheduler:Authorization:RoleAssignments</c>.
/// With authentication off every caller may do everything. Inject it to filter lists (e.g. of task hubs) by permission.
/// </summary>
public sealed class AccessControl(SchedulerSecurity security)
{
    public const string SubjectClaim = "sub";
    public const string ObjectIdClaim = "oid";
    public const string NameClaim = "name";
    public const string Anonymous = "anonymous";

    readonly string _roleClaimType = security.Authentication.Jwt.RoleClaimType;

    public bool AuthenticationEnabled => security.Enabled;

    public static bool IsAuthenticated(ClaimsPrincipal? user) => user?.Identity?.IsAuthenticated == true;

    /// <summary>True when <paramref name="user"/> holds <paramref name="permission"/> on task hub <paramref name="hub"/>.</summary>
    public bool IsAllowed(ClaimsPrincipal? user, Permission permission, string hub)
    {
        if (!security.Enabled) return true;
        if (!IsAuthenticated(user)) return false;
        foreach (var assignment in AssignmentsOf(user!))
        {
            if (assignment.Covers(hub) && Roles.Grants(assignment.Role, permission)) return true;
        }

        return false;
    }

    /// <summary>True when <paramref name="user"/> holds <paramref name="permission"/> on at least one task hub.</summary>
    public bool IsAllowedSomewhere(ClaimsPrincipal? user, Permission permission)
    {
        if (!security.Enabled) return true;
        if (!IsAuthenticated(user)) return false;
        return AssignmentsOf(user!).Any(a => Roles.Grants(a.Role, permission));
    }

    /// <summary>The caller's role assignments: from its role claims, then from configuration.</summary>
    public IReadOnlyList<RoleAssignment> AssignmentsOf(ClaimsPrincipal user)
    {
        var result = new List<RoleAssignment>();
        foreach (var claim in user.Claims)
        {
            if (claim.Type == _roleClaimType && Roles.TryParseAssignment(claim.Value, out var assignment)) result.Add(assignment);
        }

        if (security.ConfiguredAssignments.Count > 0)
        {
            string? id = PrincipalId(user);
            foreach (var (principal, assignment) in security.ConfiguredAssignments)
            {
                if (principal == "*" || (id is not null && string.Equals(principal, id, StringComparison.OrdinalIgnoreCase)))
                    result.Add(assignment);
            }
        }

        return result;
    }

    /// <summary>The id role assignments name: <c>oid</c> (Entra object id), else <c>sub</c>; <c>apikey:{name}</c> for API keys.</summary>
    public static string? PrincipalId(ClaimsPrincipal user) =>
        user.FindFirst(ObjectIdClaim)?.Value ?? user.FindFirst(SubjectClaim)?.Value;

    /// <summary>How the audit log names the caller: its id plus a readable name when the token has one.</summary>
    public static string Describe(ClaimsPrincipal? user)
    {
        if (!IsAuthenticated(user)) return Anonymous;
        string id = PrincipalId(user!) ?? "unknown";
        string? name = user!.FindFirst(NameClaim)?.Value ?? user.FindFirst("preferred_username")?.Value
            ?? user.FindFirst("azp")?.Value ?? user.FindFirst("appid")?.Value;
        return name is null || name == id ? Sanitize(id) : $"{Sanitize(id)} ({Sanitize(name)})";
    }

    /// <summary>Shortens a caller-supplied value and replaces control characters, so log lines cannot be forged.</summary>
    public static string Sanitize(string? value, int max = 100)
    {
        if (value is null) return "";
        var span = value.Length > max ? value.AsSpan(0, max) : value.AsSpan();
        bool clean = true;
        foreach (var c in span)
        {
            if (char.IsControl(c) || char.IsSurrogate(c)) { clean = false; break; }
        }

        string text = clean ? span.ToString() : string.Create(span.Length, value, (dest, v) =>
        {
            for (int i = 0; i < dest.Length; i++) dest[i] = char.IsControl(v[i]) || char.IsSurrogate(v[i]) ? '?' : v[i];
        });
        return value.Length > max ? text + "..." : text;
    }
}
