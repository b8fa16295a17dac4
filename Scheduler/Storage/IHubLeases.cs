namespace DurableTask.Scheduler.Storage;

/// <summary>
/// Ownership of task hubs by scheduler replicas that share one store. A hub lease names its owner and carries a fencing
/// token (the fence) that grows with every acquisition; the owner's commits are fenced by the lease, so a replica that
/// lost its hub lease cannot commit even if it still believes it owns the hub. (Not to be confused with the leases of
/// work items handed to workers.)
/// </summary>
public interface IHubLeases
{
    /// <summary>
    /// With <paramref name="take"/>, takes the lease of <paramref name="hub"/> for <paramref name="duration"/> when it is
    /// free or was left by an earlier run of this replica. Returns the lease now in force (this replica's when taken,
    /// otherwise the owner's), or null when the hub has no owner (and <paramref name="take"/> was false).
    /// </summary>
    Task<HubLease?> TryAcquireAsync(string hub, string replicaId, string endpoints, TimeSpan duration, bool take, CancellationToken cancellationToken);

    /// <summary>Extends a held lease; false when it is no longer this lease (expired and taken, or released).</summary>
    Task<bool> RenewAsync(string hub, HubLease lease, TimeSpan duration, CancellationToken cancellationToken);

    /// <summary>Gives a held lease up at once (graceful shutdown), so another replica need not wait for it to expire.</summary>
    Task ReleaseAsync(string hub, HubLease lease, CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="replicaId"/> is alive, and returns how many replicas were alive within <paramref name="window"/>.</summary>
    Task<int> HeartbeatAsync(string replicaId, TimeSpan window, CancellationToken cancellationToken);

    /// <summary>Opens the store of <paramref name="hub"/> with its commits fenced by <paramref name="lease"/>.</summary>
    ITaskHubStore OpenFenced(string hub, HubLease lease);
}

/// <summary>
/// One hub lease as stored: <c>replica|fence|endpoints</c>, where the fence is the fencing token, a number that grows
/// with every acquisition of the hub (Redis counts it in the hub's <c>:epoch</c> key, a name kept for stored data).
/// </summary>
public sealed record HubLease(string Value, string ReplicaId, long Fence, string Endpoints)
{
    public static HubLease? Parse(string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        var parts = value.Split('|', 3);
        if (parts.Length != 3 || !long.TryParse(parts[1], out long fence)) return null;
        return new HubLease(value, parts[0], fence, parts[2]);
    }
}

/// <summary>A commit was refused, as its replica no longer holds the hub lease: nothing was applied.</summary>
public sealed class StoreFencedException(string message) : Exception(message);
