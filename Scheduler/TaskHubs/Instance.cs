using DurableTask.Scheduler.Orchestration;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// An orchestration instance as a task hub holds it: its <see cref="InstanceState"/>, and what the hub keeps about it
/// to dispatch it (its work item in flight, its place in the ready queue, redelivery backoff), to store it (the commit
/// epoch of its last change, what the store already holds) and to keep it in memory (its place among the finished
/// instances, how long it stays). Guarded by the hub's lock.
/// </summary>
public sealed class Instance(string instanceId) : InstanceState(instanceId)
{
    // Dispatch.

    /// <summary>The in-flight orchestrator work item, if any. At most one per instance.</summary>
    public InFlightEpisode? InFlight { get; set; }

    /// <summary>True while the instance sits in the hub's ready queue.</summary>
    public bool Queued { get; set; }

    /// <summary>When the instance last joined the ready queue (<see cref="TimeProvider.GetTimestamp"/>), for the dispatch span's wait.</summary>
    public long ReadySince { get; set; }

    /// <summary>Redelivery state, which most instances never need: created when first set.</summary>
    sealed class Redelivery
    {
        public DateTime NotBefore;
        public int FailedDeliveries;
        public bool WakeTimerSet;
    }

    Redelivery? _redelivery;

    Redelivery Delivery => _redelivery ??= new Redelivery();

    /// <summary>Not dispatched before this time (redelivery backoff).</summary>
    public DateTime NotBefore
    {
        get => _redelivery?.NotBefore ?? default;
        set { if (value != default || _redelivery is not null) Delivery.NotBefore = value; }
    }

    /// <summary>Consecutive abandoned deliveries; reset by a completed episode.</summary>
    public int FailedDeliveries
    {
        get => _redelivery?.FailedDeliveries ?? 0;
        set { if (value != 0 || _redelivery is not null) Delivery.FailedDeliveries = value; }
    }

    /// <summary>True while a timer is set to look at the instance again when its backoff or hold ends.</summary>
    public bool WakeTimerSet
    {
        get => _redelivery?.WakeTimerSet ?? false;
        set { if (value || _redelivery is not null) Delivery.WakeTimerSet = value; }
    }

    /// <summary>True when an episode can run: none in flight, something to process, and a start event to run it from.</summary>
    public bool IsRunnable(DateTime now)
    {
        if (InFlight is not null || NotBefore > now) return false;
        if (ReplayRequested) return true;
        if (InboxCount == 0) return false;
        if (HasStarted) return true;
        foreach (var e in Inbox)
        {
            if (e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionStarted) return true;
        }

        return false;
    }

    // Storage.

    /// <summary>Commit epoch of the instance's latest change; its work is dispatched once that epoch is durable.</summary>
    public long DirtyEpoch { get; set; }

    /// <summary>Generation and number of history events already in the store.</summary>
    public int PersistedGeneration { get; set; }
    public int PersistedHistoryCount { get; set; }

    /// <summary>The status in this instance's last snapshot for the store (-1 before the first).</summary>
    public int PersistedStatus { get; set; } = -1;

    /// <summary>True once a snapshot of this instance (this object) went into a batch, or it was loaded from the store.</summary>
    public bool InStore { get; set; }

    /// <summary>
    /// True while the store holds <see cref="InstanceState.Input"/> apart from the record, as the last whole write of
    /// this instance's row left it, so later snapshots may leave the input out. Any assignment of the input clears it.
    /// </summary>
    public bool InputStored { get; set; }

    protected override void InputChanged() => InputStored = false;

    /// <summary>
    /// True while the store may hold the instance as parked (it left memory waiting for a client, see
    /// <see cref="Storage.CommitBatch.ParkedInstances"/>): its next snapshot writes its status again, which unparks it.
    /// </summary>
    public bool StoreParked { get; set; }

    /// <summary>When it last changed (UTC ticks), while unfinished and resident: see <see cref="InstanceCache"/>'s parking in place.</summary>
    internal long TouchedAt { get; set; }

    // Memory and counts.

    /// <summary>Its place among the hub's finished instances in memory (null while unfinished).</summary>
    internal LinkedListNode<Instance>? FinishedNode { get; set; }

    /// <summary>Which time this instance object came into the hub's memory (created or read back): the timers it arms are its own.</summary>
    internal long Incarnation { get; set; }

    /// <summary>Its place among the hub's unfinished instances in memory, by when they last changed (see <see cref="InstanceCache"/>).</summary>
    internal LinkedListNode<Instance>? WaitingNode { get; set; }

    /// <summary>Kept in memory at least until then (read back from the store, or just used).</summary>
    public DateTime PinnedUntil { get; set; }

    /// <summary>The owning hub's per-status counters while the instance is registered there.</summary>
    internal int[]? StatusCounts { get; set; }

    protected override void StatusChanged(OrchestrationStatus from, OrchestrationStatus to)
    {
        if (StatusCounts is { } counts)
        {
            counts[(int)from]--;
            counts[(int)to]++;
        }
    }
}
