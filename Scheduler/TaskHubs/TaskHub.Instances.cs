using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Domain;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;
using EventTypeOneofCase = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Client operations on single instances: start, read, wait, raise, terminate, suspend, resume, restart, rewind.</summary>
public sealed partial class TaskHub
{
    string StartInstance(CreateInstanceRequest request)
    {
        var scheduled = request.ScheduledStartTimestamp?.ToDateTime();
        lock (_gate)
        {
            if (_instances.TryGet(request.InstanceId, out var existing))
            {
                bool replaceable = request.OrchestrationIdReusePolicy is { } policy
                    ? policy.ReplaceableStatus.Contains(existing.Status)
                    : existing.IsTerminal;
                if (!replaceable)
                {
                    throw TaskHubException.AlreadyExists(
                        $"an orchestration with instance id '{request.InstanceId}' already exists and is {StatusName(existing.Status)}");
                }

                RemoveInstance(existing);
            }

            CreateInstance(request.InstanceId, request.Name, request.Version, request.Input, request.Tags, null,
                request.ParentTraceContext, scheduled, request.ExecutionId);
            Pump();
            return request.InstanceId;
        }
    }

    OrchestrationState? GetState(string instanceId, bool includePayloads)
    {
        lock (_gate)
        {
            return _instances.TryGet(instanceId, out var instance) ? instance.ToState(includePayloads) : null;
        }
    }

    /// <summary>
    /// An instance's state as a client may be shown it: once the change that produced it is durable, so a status seen
    /// here survives a crash of the scheduler (it may be in the batch being written).
    /// </summary>
    public async ValueTask<OrchestrationState?> GetCommittedStateAsync(string instanceId, bool includePayloads, CancellationToken cancellationToken = default)
    {
        var state = await GetStateAsync(instanceId, includePayloads, cancellationToken).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
        return state;
    }

    /// <summary>
    /// Waits until the instance has started (or finished), and answers once that state is durable. Instances that do
    /// not exist yet are awaited too.
    /// </summary>
    public async Task<OrchestrationState> WaitAsync(string instanceId, bool untilCompletion, bool includePayloads, CancellationToken cancellationToken)
    {
        var state = await WaitForStateAsync(instanceId, untilCompletion, includePayloads, cancellationToken).ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
        return state;
    }

    async Task<OrchestrationState> WaitForStateAsync(string instanceId, bool untilCompletion, bool includePayloads, CancellationToken cancellationToken)
    {
        if (await SettledInStoreAsync(instanceId, untilCompletion, includePayloads, cancellationToken).ConfigureAwait(false) is { } settled) return settled;
        Waiter waiter;
        lock (_gate)
        {
            if (_instances.TryGet(instanceId, out var instance)
                && (untilCompletion ? instance.IsTerminal : instance.Status != OrchestrationStatus.Pending))
            {
                return instance.ToState(includePayloads);
            }

            // A hub object that stopped because another replica owns the hub now never signals new waiters.
            if (_fencedReason is not null) throw MovedError();
            waiter = new Waiter(untilCompletion, includePayloads);
            if (!_waiters.TryGetValue(instanceId, out var list)) _waiters[instanceId] = list = new List<Waiter>(1);
            list.Add(waiter);
            if (!untilCompletion) _startWaiters++;
        }

        try
        {
            return await waiter.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // A signalled (or failed) waiter was taken off the list by whoever completed it.
            if (!waiter.Completion.Task.IsCompleted)
            {
                lock (_gate)
                {
                    if (_waiters.TryGetValue(instanceId, out var list) && list.Remove(waiter))
                    {
                        if (!untilCompletion) _startWaiters--;
                        if (list.Count == 0) _waiters.Remove(instanceId);
                    }
                }
            }
        }
    }

    void RaiseEvent(string instanceId, string name, string? input)
    {
        lock (_gate)
        {
            var instance = Require(instanceId);
            var e = NewEvent(Now);
            e.EventRaised = new EventRaisedEvent { Name = name, Input = input };
            // An event for a finished instance is dropped, as a late message would be.
            Deliver(instance.InstanceId, e);
            Pump();
        }
    }

    void Terminate(string instanceId, string? output, bool recursive)
    {
        lock (_gate)
        {
            var instance = Require(instanceId);
            TerminateInstance(instance, output, recursive, Now);
            Pump();
        }
    }

    void TerminateInstance(Instance instance, string? output, bool recursive, DateTime now)
    {
        if (instance.IsTerminal) return;
        if (!instance.HasStarted && instance.InFlight is null)
        {
            // Never ran: nothing in a worker can react, so the scheduler ends it itself.
            OrchestrationStateMachine.TerminateAtOnce(instance, output, recursive, this, now);
            NotifyWaiters(instance);
            return;
        }

        var e = NewEvent(now);
        e.ExecutionTerminated = new ExecutionTerminatedEvent { Input = output, Recurse = recursive };
        Deliver(instance.InstanceId, e);
    }

    /// <summary>An emergency termination of one instance; false when it was left alone (see <see cref="TerminateAtOnceAsync"/>).</summary>
    bool TerminateAtOnce(string instanceId, string? reason)
    {
        lock (_gate)
        {
            if (!_instances.TryGet(instanceId, out var instance) || instance.IsTerminal) return false;
            if (_locksByOwner.TryGetValue(instanceId, out var locks) && locks.Count > 0) return false;
            // The worker running an episode of it now finds its completion stale.
            if (instance.InFlight is { } work) EndInFlight(work);
            OrchestrationStateMachine.TerminateAtOnce(instance, reason, recurse: false, this, Now);
            NotifyWaiters(instance);
            Pump();
            return true;
        }
    }

    void Suspend(string instanceId, string? reason) => SetSuspended(instanceId, reason, suspend: true);

    void Resume(string instanceId, string? reason) => SetSuspended(instanceId, reason, suspend: false);

    void SetSuspended(string instanceId, string? reason, bool suspend)
    {
        lock (_gate)
        {
            var instance = Require(instanceId);
            if (instance.IsTerminal) return;
            var e = NewEvent(Now);
            if (suspend) e.ExecutionSuspended = new ExecutionSuspendedEvent { Input = reason };
            else e.ExecutionResumed = new ExecutionResumedEvent { Input = reason };
            Deliver(instance.InstanceId, e);
            Pump();
        }
    }

    string Restart(string instanceId, bool newInstanceId)
    {
        lock (_gate)
        {
            var instance = Require(instanceId);
            var start = instance.StartEvent ?? throw TaskHubException.WrongState($"orchestration instance '{instanceId}' has no start event to restart from");
            string id = instanceId;
            if (newInstanceId)
            {
                id = Guid.NewGuid().ToString("N");
            }
            else
            {
                if (!instance.IsTerminal)
                {
                    throw TaskHubException.WrongState(
                        $"orchestration instance '{instanceId}' is {StatusName(instance.Status)}; only a completed, failed or terminated instance can be restarted with the same id");
                }

                RemoveInstance(instance);
            }

            CreateInstance(id, start.Name, start.Version, start.Input, start.Tags, null, start.ParentTraceContext, null, null);
            Pump();
            return id;
        }
    }

    void Rewind(string instanceId, string? reason)
    {
        lock (_gate)
        {
            var instance = Require(instanceId);
            if (instance.Status != OrchestrationStatus.Failed)
            {
                throw TaskHubException.WrongState($"orchestration instance '{instanceId}' is {StatusName(instance.Status)}; only a failed instance can be rewound");
            }

            RewindInstance(instance, reason, null);
            Pump();
        }
    }

    void RewindInstance(Instance instance, string? reason, string? parentExecutionId)
    {
        MarkDirty(instance);
        var e = OrchestrationStateMachine.BeginRewind(instance, reason, parentExecutionId, Now);
        Deliver(instance.InstanceId, e);
        NotifyWaiters(instance);
    }

    /// <summary>A copy of the current execution's history, or null when the instance (or that execution) does not exist.</summary>
    List<HistoryEvent>? GetHistory(string instanceId, string? executionId)
    {
        lock (_gate)
        {
            if (!_instances.TryGet(instanceId, out var instance)) return null;
            if (!string.IsNullOrEmpty(executionId) && executionId != instance.ExecutionId) return null;
            return instance.CopyHistory();
        }
    }

    Instance Require(string instanceId) =>
        _instances.TryGet(instanceId, out var instance) ? instance : throw TaskHubException.InstanceNotFound(instanceId);
}
