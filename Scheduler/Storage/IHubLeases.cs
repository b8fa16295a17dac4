namespace DurableTask.Scheduler.Storage;

/// <summary>
/// Ownership of task hubs by scheduler replicas that share one store. A lease names its owner and carries an epoch
/// that grows with every acquisition; the owner's commits are fenced by it, so a replica that lost its lease cannot
/// commit even if it still believes it owns the hub.
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

/// <summary>One lease as stored: <c>replica|epoch|endpoints</c>.</summary>
public sealed record HubLease(string Value, string ReplicaId, long Epoch, string Endpoints)
{
    public static HubLease? Parse(string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        var parts = value.Split('|', 3);
        if (parts.Length != 3 || !long.TryParse(parts[1], out long epoch)) return null;
        return new HubLease(value, parts[0], epoch, parts[2]);
    }
}

/// <summary>A commit was refused because the committing replica no longer holds the hub's lease: nothing was applied.</summary>
public sealed class StoreFencedException(string message) : Exception(message);
