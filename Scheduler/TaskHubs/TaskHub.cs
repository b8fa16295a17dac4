using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Orchestration;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// One task hub: its instances, ready queues (<see cref="WorkDispatcher"/>), connected workers, in-flight work and timers.
/// All state is guarded by <see cref="_gate"/>; critical sections are short and never await.
/// </summary>
public sealed partial class TaskHub : IOrchestrationEffects
{
    readonly Lock _gate = new();
    readonly SchedulerOptions _options;
    readonly TimeProvider _time;
    readonly ILogger _logger;

    /// <summary>The instances in memory, their counts by status, and eviction to the store.</summary>
    readonly InstanceCache _instances;

    readonly Dictionary<string, List<Waiter>> _waiters = new(StringComparer.Ordinal);

    /// <summary>Waiters in <see cref="_waiters"/> waiting for a start rather than a completion.</summary>
    int _startWaiters;
    bool _stopped;

    public TaskHub(string name, SchedulerOptions options, TimeProvider time, ILogger<TaskHub> logger)
    {
        Name = name;
        _options = options;
        _time = time;
        _logger = logger;
        _orchestrations = new OrchestrationStateMachine(options.MaxFanInHold);
        _due = new DueQueue(time, OnTimer, logger, name);
        _commits = new CommitPipeline(_gate, this, name, options.CommitTimeout, logger);
        _dispatch = new WorkDispatcher(name, options, time, _commits, this);
        _workers = _dispatch.Workers;
        _instances = new InstanceCache(_commits, this, time, options.MaxFinishedInstancesInMemory, options.MaxUnfinishedInstancesInMemory);
    }

    public string Name { get; }

    DateTime Now => _time.GetUtcNow().UtcDateTime;

    /// <summary>Durable timers, scheduled starts, redelivery delays and grace periods, run under the lock when due.</summary>
    readonly DueQueue _due;

    /// <summary>Runs <paramref name="action"/> under the hub lock at or after <paramref name="dueAt"/>, never before.</summary>
    void Schedule(DateTime dueAt, Action action) => _due.Add(dueAt, action);

    void OnTimer()
    {
        lock (_gate)
        {
            _due.RunDue();
            Pump();
        }
    }

    public void Stop()
    {
        lock (_gate)
        {
            _stopped = true;
            _due.Stop();
            _workers.CloseAll();

            // Let the commit loop write what is pending and end.
            _commits.Wake();
        }
    }

    /// <summary>Waits for the last commit after <see cref="Stop"/>, then closes the store.</summary>
    public async Task CloseAsync()
    {
        if (_commits.Loop is { } loop) await loop.ConfigureAwait(false);
        await _commits.Store.DisposeAsync().ConfigureAwait(false);
    }

    static HistoryEvent NewEvent(DateTime now, int eventId = -1) => OrchestrationStateMachine.NewEvent(now, eventId);

    /// <summary>Appends a message to an instance's inbox, applying the drop rules for stale or terminal targets.</summary>
    /// <returns>false when the message was dropped.</returns>
    bool Deliver(string instanceId, HistoryEvent message, string? executionId = null)
    {
        if (!_instances.TryGet(instanceId, out var instance))
        {
            // Every path to an instance that may be only in the store reads it back first (see TaskHub.Loading); should
            // one not have, the message is delivered once the instance is read back rather than dropped.
            if (_instances.UnfinishedSpilled) _ = Task.Run(() => DeliverWhenLoadedAsync(instanceId, message, executionId));
            return false;
        }

        if (!OrchestrationStateMachine.Accept(instance, message, executionId)) return false;
        MarkDirty(instance);
        MakeReady(instance);
        return true;
    }

    void MakeReady(Instance instance)
    {
        if (instance.Queued) return;
        var now = Now;
        if (instance.HeldUntil > now || !instance.IsRunnable(now))
        {
            // Not yet: look again when its redelivery backoff or fan-in hold ends (one timer, however many messages
            // come in meanwhile; the look decides again).
            var until = instance.HeldUntil > instance.NotBefore ? instance.HeldUntil : instance.NotBefore;
            if (instance.InFlight is null && until > now && (instance.InboxCount > 0 || instance.ReplayRequested) && !instance.WakeTimerSet)
            {
                ScheduleWake(instance, until);
            }

            return;
        }

        _dispatch.Enqueue(instance);
    }

    // A method of its own, so the closure is allocated only when a wake-up is scheduled (a lambda in MakeReady would
    // have its captures allocated on every call).
    void ScheduleWake(Instance instance, DateTime until)
    {
        instance.WakeTimerSet = true;
        Schedule(until, () =>
        {
            instance.WakeTimerSet = false;
            MakeReady(instance);
        });
    }

    void Touch(Instance instance) => instance.LastUpdatedAt = Now;

    readonly ThroughputCounters _throughput = new();

    /// <summary>Started and finished orchestrations per minute, oldest first, for the last <paramref name="minutes"/> minutes.</summary>
    public IReadOnlyList<ThroughputPoint> GetThroughput(int minutes = 15)
    {
        lock (_gate) return _throughput.Read(minutes, Now);
    }

    /// <summary>Instances per status, in memory and (finished ones) only in the store.</summary>
    public int[] GetStatusCounts()
    {
        lock (_gate) return _instances.CountsByStatus();
    }

    long _incarnations;

    void AddInstance(Instance instance)
    {
        instance.Incarnation = ++_incarnations;
        _instances.Add(instance);
    }

    void RemoveInstance(Instance instance)
    {
        if (instance.InFlight is { } work) EndInFlight(work);
        _instances.Remove(instance);
        MarkDeleted(instance);
        instance.Inbox.Clear();
        instance.DeferredStart = null;
        ReleaseLocksHeldBy(instance.InstanceId);
    }

    void NotifyWaiters(Instance instance)
    {
        if (_waiters.Count == 0) return;
        // Most changes (an episode of a running instance) can satisfy nobody: no lookup for them.
        if (!instance.IsTerminal && (_startWaiters == 0 || instance.Status == OrchestrationStatus.Pending)) return;
        if (!_waiters.TryGetValue(instance.InstanceId, out var list)) return;
        for (int i = list.Count - 1; i >= 0; i--)
        {
            var waiter = list[i];
            bool done = waiter.UntilCompletion ? instance.IsTerminal : instance.Status != OrchestrationStatus.Pending;
            if (done)
            {
                list.RemoveAt(i);
                if (!waiter.UntilCompletion) _startWaiters--;
                waiter.Completion.TrySetResult(instance.ToState(waiter.IncludePayloads));
            }
        }

        if (list.Count == 0) _waiters.Remove(instance.InstanceId);
    }

    TimeSpan RedeliveryDelay(int failedDeliveries)
    {
        var delay = _options.RedeliveryDelay * Math.Pow(2, Math.Min(failedDeliveries - 1, 16));
        return delay > _options.MaxRedeliveryDelay ? _options.MaxRedeliveryDelay : delay;
    }
}
