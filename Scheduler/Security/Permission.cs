namespace DurableTask.Scheduler.Security;

/// <summary>What a call needs. Every gRPC method and every HTTP API endpoint requires exactly one.</summary>
public enum Permission
{
    /// <summary>Read instances, histories, entities and queries.</summary>
    Read,

    /// <summary>Client operations that change instances: start, raise events, terminate, suspend, resume, restart, rewind, signal entities.</summary>
    ClientWrite,

    /// <summary>Receive and complete work items (<c>GetWorkItems</c>, <c>Complete*</c>, <c>Abandon*</c>).</summary>
    WorkerProcess,

    /// <summary>Destructive maintenance: purge, entity storage cleanup, force termination, task hub creation and deletion.</summary>
    Admin,
}

/// <summary>The three roles of the managed Durable Task Scheduler.</summary>
public enum DurableTaskRole
{
    /// <summary><c>Durable Task Data Reader</c> (<c>reader</c>): read only.</summary>
    Reader,

    /// <summary><c>Durable Task Worker</c> (<c>worker</c>): process work items and use the client, but not purge or administer.</summary>
    Worker,

    /// <summary><c>Durable Task Data Contributor</c> (<c>contributor</c>): everything.</summary>
    Contributor,
}

/// <summary>A role granted on a scope: <c>*</c> (every task hub) or one task hub's name.</summary>
public readonly record struct RoleAssignment(DurableTaskRole Role, string Scope)
{
    public const string AllHubs = "*";

    public bool Covers(string hub) => Scope == AllHubs || string.Equals(Scope, hub, StringComparison.OrdinalIgnoreCase);

    public override string ToString() => $"{Roles.ShortName(Role)}:{Scope}";
}

public static class Roles
{
    public const string ContributorName = "Durable Task Data Contributor";
    public const string WorkerName = "Durable Task Worker";
    public const string ReaderName = "Durable Task Data Reader";

    /// <summary>What each role may do (per the managed service: Contributor is a superset of Worker, Worker of Reader).</summary>
    public static bool Grants(DurableTaskRole role, Permission permission) => role switch
    {
        DurableTaskRole.Contributor => true,
        DurableTaskRole.Worker => permission is Permission.Read or Permission.ClientWrite or Permission.WorkerProcess,
        DurableTaskRole.Reader => permission is Permission.Read,
        _ => false,
    };

    public static string ShortName(DurableTaskRole role) => role switch
    {
        DurableTaskRole.Contributor => "contributor",
        DurableTaskRole.Worker => "worker",
        _ => "reader",
    };

    public static bool TryParseRole(string? value, out DurableTaskRole role)
    {
        switch (value?.Trim().ToLowerInvariant())
        {
            case "contributor" or "durable task data contributor":
                role = DurableTaskRole.Contributor;
                return true;
            case "worker" or "durable task worker":
                role = DurableTaskRole.Worker;
                return true;
            case "reader" or "durable task data reader":
                role = DurableTaskRole.Reader;
                return true;
            default:
                role = default;
                return false;
        }
    }

    /// <summary>
    /// Parses a role claim value or a configured role: <c>worker</c>, <c>Durable Task Worker</c> (scope <c>*</c>), or
    /// <c>worker:orders</c> (scope = task hub <c>orders</c>). Values naming no Durable Task role give false.
    /// </summary>
    public static bool TryParseAssignment(string? value, out RoleAssignment assignment)
    {
        assignment = default;
        if (string.IsNullOrWhiteSpace(value) || value.Length > 200) return false;
        int colon = value.IndexOf(':');
        string name = colon < 0 ? value : value[..colon];
        string scope = colon < 0 ? RoleAssignment.AllHubs : value[(colon + 1)..].Trim();
        if (!TryParseRole(name, out var role) || scope.Length == 0) return false;
        assignment = new RoleAssignment(role, scope);
        return true;
    }
}
