using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// The hub's side of dispatch (see <see cref="WorkDispatcher"/>): workers connecting and leaving, work that is not
/// ready yet (redelivery backoff, fan-in hold), and work returned by a worker that went away.
/// </summary>
public sealed partial class TaskHub : IDispatchOwner
{
    readonly WorkDispatcher _dispatch;

    /// <summary>The connected workers and the work in flight with them (the dispatcher's pool).</summary>
    readonly WorkerPool _workers;

    public WorkerConnection Connect(string workerId, GetWorkItemsRequest request)
    {
        var worker = new WorkerConnection(workerId, Name, request, _options.DefaultWorkerConcurrency, _options.MaxOrchestrationWorkItemsPerWorker);
        lock (_gate)
        {
            if (_stopped) worker.Outbox.Writer.TryComplete();
            _workers.Add(worker);
            _dispatch.WorkerConnected();
            Logs.WorkerConnected(_logger, workerId, Name);
            Pump();
        }

        return worker;
    }

    public void Disconnect(WorkerConnection worker)
    {
        lock (_gate)
        {
            if (worker.Closed) return;
            worker.Closed = true;
            worker.Outbox.Writer.TryComplete();
            _workers.Remove(worker);
            Logs.WorkerDisconnected(_logger, worker.Id, Name, worker.InFlight.Count);
            if (worker.InFlight.Count == 0) return;

            // A completion may still arrive on a separate call; give it a moment before handing the work to someone else.
            var orphans = worker.InFlight.ToList();
            Schedule(Now + _options.DisconnectGracePeriod, () =>
            {
                foreach (var work in orphans)
                {
                    if (_workers.IsInFlight(work)) Abandon(work);
                }
            });
        }
    }

    public IReadOnlyList<WorkerInfo> GetWorkers()
    {
        lock (_gate)
        {
            return _workers.Workers.Select(w => new WorkerInfo(w.Id, Name, w.ConnectedAt,
                w.InFlightOrchestrations, w.InFlightActivities, w.InFlightEntities, w.OrchestrationFilter, w.ActivityFilter, w.EntityFilter)).ToList();
        }
    }

    /// <summary>The work waiting for a worker by type, name and version (<see cref="WorkDispatcher.GroupBacklog"/>): for operators.</summary>
    public IReadOnlyList<BacklogGroup> GetBacklogGroups()
    {
        lock (_gate) return _dispatch.GroupBacklog();
    }

    public BacklogInfo GetBacklog()
    {
        lock (_gate)
        {
            return _dispatch.Backlog;
        }
    }

    /// <summary>Hands as much ready work as the connected workers can take. Called under the lock after every change.</summary>
    void Pump() => _dispatch.Pump();

    void EnqueueActivity(ActivityTask task)
    {
        if (task.NotBefore > Now)
        {
            EnqueueLater(task);
            return;
        }

        _dispatch.Enqueue(task);
    }

    // Apart from EnqueueActivity, so its closure is allocated only for a task that waits.
    void EnqueueLater(ActivityTask task) => Schedule(task.NotBefore, () => EnqueueActivity(task));

    void EndInFlight(InFlightWork work) => _dispatch.End(work);

    /// <summary>Returns work in flight to its queue, to be redelivered after a growing delay.</summary>
    void Abandon(InFlightWork work)
    {
        EndInFlight(work);
        switch (work)
        {
            case InFlightEpisode o:
                var instance = o.Instance;
                if (!_instances.TryGet(instance.InstanceId, out var current) || !ReferenceEquals(current, instance)) return;
                instance.FailedDeliveries++;
                instance.NotBefore = Now + RedeliveryDelay(instance.FailedDeliveries);
                // The episode did not happen: nothing it was given was consumed.
                if (o.DispatchedCount == 0) instance.ReplayRequested = true;
                MakeReady(instance);
                break;
            case InFlightActivity a:
                a.Task.FailedDeliveries++;
                a.Task.NotBefore = Now + RedeliveryDelay(a.Task.FailedDeliveries);
                EnqueueActivity(a.Task);
                break;
            case InFlightEntityBatch e:
                _entityRules.BatchNotRun(e.Entity, e.Batch, Now, this);
                break;
        }
    }

    void IDispatchOwner.Reconsider(Instance instance) => MakeReady(instance);

    void IDispatchOwner.Reconsider(Entity entity) => ProcessEntity(entity);

    public bool AbandonWorkItem(string token)
    {
        lock (_gate)
        {
            if (!_workers.TryGet(token, out var work)) return false;
            Abandon(work);
            Pump();
            return true;
        }
    }
}

/// <summary>One connected worker. Its filters (null: it takes every name and version) are fixed when it connects, so they may be read outside the hub's lock.</summary>
public sealed record WorkerInfo(string WorkerId, string TaskHub, DateTime ConnectedAt, int OrchestrationsInFlight, int ActivitiesInFlight, int EntitiesInFlight,
    WorkFilter? Orchestrations, WorkFilter? Activities, WorkFilter? Entities);

/// <summary>Work waiting for a worker, by type, and work items handed out but not yet completed.</summary>
public sealed record BacklogInfo(int Orchestrations, int Activities, int Entities, int InFlight)
{
    public int Pending => Orchestrations + Activities + Entities;
}
