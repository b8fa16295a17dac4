namespace DurableTask.Scheduler.Configuration;

/// <summary>
/// Settings of several scheduler replicas sharing one Redis (<c>Scheduler:ScaleOut</c>). Each task hub is owned by
/// one replica at a time through a hub lease in Redis; the others forward its calls to the owner.
/// </summary>
public sealed class ScaleOutOptions
{
    /// <summary>
    /// Name of this replica in hub leases and logs; unique among the replicas. Default: <c>host:grpcPort</c>, so a
    /// replica that restarts on the same host and port takes its own leases back at once instead of waiting for them
    /// to expire.
    /// </summary>
    public string? ReplicaId { get; set; }

    /// <summary>
    /// How long a hub lease lasts without renewal. A dead replica's hubs are taken over at most
    /// <c>LeaseDuration + RenewInterval</c> after its last renewal (12 s by default).
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often hub leases are renewed and free hubs looked for; at most a third of LeaseDuration.</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Host name or address other replicas use to reach this one. Default: the bind address, or, when bound to every
    /// interface, this machine's first non-loopback IPv4 address.
    /// </summary>
    public string? AdvertisedHost { get; set; }

    /// <summary>The longest a dead owner's hubs stay unowned: the bound on takeover.</summary>
    public TimeSpan TakeoverBound => LeaseDuration + RenewInterval;

    internal void Validate()
    {
        if (LeaseDuration < TimeSpan.FromSeconds(1))
            throw new InvalidOperationException("Scheduler:ScaleOut:LeaseDuration must be at least 1 s.");
        if (RenewInterval <= TimeSpan.Zero || RenewInterval * 3 > LeaseDuration)
            throw new InvalidOperationException(
                $"Scheduler:ScaleOut:RenewInterval must be positive and at most a third of LeaseDuration ({LeaseDuration.TotalSeconds:0.###} s).");
        if (ReplicaId is not null && (ReplicaId.Length is 0 or > 200 || ReplicaId.Contains('|')))
            throw new InvalidOperationException("Scheduler:ScaleOut:ReplicaId must be 1-200 characters without '|'.");
    }
}
