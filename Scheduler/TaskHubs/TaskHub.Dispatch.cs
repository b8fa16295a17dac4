using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Orchestration;
using DurableTask.Scheduler.Protocol.Wire;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Pushing ready work to connected workers, within each worker's concurrency limits and filters.</summary>
public sealed partial class TaskHub
{
    public WorkerConnection Connect(string workerId, GetWorkItemsRequest request)
    {
        var worker = new WorkerConnection(workerId, Name, request, _options.DefaultWorkerConcurrency, _options.MaxOrchestrationWorkItemsPerWorker);
        lock (_gate)
        {
            if (_stopped) worker.Outbox.Writer.TryComplete();
            _workers.Add(worker);
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
                w.InFlightOrchestrations, w.InFlightActivities, w.InFlightEntities)).ToList();
        }
    }

    public BacklogInfo GetBacklog()
    {
        lock (_gate)
        {
            return new BacklogInfo(_readyOrchestrations.Count + _awaitingCommit.Count, _readyActivities.Count, _readyEntities.Count, _workers.InFlightCount);
        }
    }

    /// <summary>Hands as much ready work as the connected workers can take. Called under the lock after every change.</summary>
    void Pump()
    {
        if (_workers.Count == 0) return;
        if (_readyOrchestrations.Count > 0) PumpOrchestrations();
        if (_readyActivities.Count > 0) PumpActivities();
        if (_readyEntities.Count > 0) PumpEntities();
    }

    /// <summary>Ready instances whose latest change is not durable yet; they rejoin the ready queue after its commit.</summary>
    readonly List<Instance> _awaitingCommit = new();

    void ReleaseCommitted()
    {
        if (_awaitingCommit.Count == 0) return;
        int kept = 0;
        for (int i = 0; i < _awaitingCommit.Count; i++)
        {
            var instance = _awaitingCommit[i];
            if (IsCommitted(instance.DirtyEpoch)) _readyOrchestrations.AddLast(instance);
            else _awaitingCommit[kept++] = instance;
        }

        _awaitingCommit.RemoveRange(kept, _awaitingCommit.Count - kept);
    }

    void PumpOrchestrations()
    {
        var now = Now;
        var node = _readyOrchestrations.First;
        while (node is not null)
        {
            var next = node.Next;
            var instance = node.Value;
            if (!instance.IsRunnable(now))
            {
                _readyOrchestrations.Remove(node);
                instance.Queued = false;
                MakeReady(instance);
                node = next;
                continue;
            }

            if (!IsCommitted(instance.DirtyEpoch))
            {
                // Parked until its batch is durable, so the pumps in between do not walk it again (it stays Queued).
                _readyOrchestrations.Remove(node);
                _awaitingCommit.Add(instance);
                node = next;
                continue;
            }

            var worker = PickWorker(WorkKind.Orchestration, instance.Name, instance.Version, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _readyOrchestrations.Remove(node);
                instance.Queued = false;
                SendOrchestration(worker, instance, now);
            }

            node = next;
        }
    }

    void PumpActivities()
    {
        var node = _readyActivities.First;
        while (node is not null)
        {
            var next = node.Next;
            var task = node.Value;
            // Tasks are queued in commit order, so the rest are not durable either (a redelivered task behind one
            // waits for the next commit, after which the pump runs again).
            if (!IsCommitted(task.Epoch)) return;

            var worker = PickWorker(WorkKind.Activity, task.Name, task.Version, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _readyActivities.Remove(node);
                SendActivity(worker, task);
            }

            node = next;
        }
    }

    WorkerConnection? PickWorker(WorkKind kind, string name, string? version, out bool anyCapacity) => _workers.Pick(kind, name, version, out anyCapacity);

    void SendOrchestration(WorkerConnection worker, Instance instance, DateTime now)
    {
        var (newEvents, count) = OutboundWorkItem.EncodeNewEvents(now, instance.Inbox, _options.MaxEventsPerWorkItem, _options.MaxNewEventBytesPerWorkItem);

        // The past events go in the form they were encoded in when they were committed (EncodedHistory).
        var encoded = instance.Encoded;
        var pastEvents = ReadOnlyMemory<byte>.Empty;
        bool streaming = worker.SupportsHistoryStreaming && encoded.PastEvents.Length > _options.HistoryStreamingThresholdBytes;
        if (!streaming) pastEvents = encoded.PastEvents;

        var work = new InFlightEpisode
        {
            Token = NewToken('o'),
            Worker = worker,
            Instance = instance,
            StartedAt = now,
            DispatchedCount = count,
            NewEvents = newEvents,
            FirstDispatched = count > 0 ? instance.Inbox[0] : null,
            ExecutionId = instance.ExecutionId,
        };
        instance.InFlight = work;
        instance.ReplayRequested = false;
        _workers.Hand(work);
        worker.Outbox.Writer.TryWrite(OutboundWorkItem.Orchestrator(
            instance.InstanceId, work.ExecutionId, EntityParametersBytes, streaming, instance.TraceContext, pastEvents, newEvents, work.Token));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "orchestrator"), new KeyValuePair<string, object?>("hub", Name));
        SchedulerTelemetry.TraceDispatch(Name, "orchestrator", instance.Name, instance.InstanceId, instance.ParentTraceContext);
    }

    void SendActivity(WorkerConnection worker, ActivityTask task)
    {
        var work = new InFlightActivity { Token = NewToken('a'), Worker = worker, Task = task };
        _workers.Hand(work);
        worker.Outbox.Writer.TryWrite(OutboundWorkItem.Activity(task.Request, work.Token));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "activity"), new KeyValuePair<string, object?>("hub", Name));
        SchedulerTelemetry.TraceDispatch(Name, "activity", task.Name, task.InstanceId, task.ParentTraceContext);
    }

    void EnqueueActivity(ActivityTask task)
    {
        if (task.NotBefore > Now)
        {
            EnqueueLater(task);
            return;
        }

        _readyActivities.AddLast(task);
    }

    // Apart from EnqueueActivity, so its closure is allocated only for a task that waits.
    void EnqueueLater(ActivityTask task) => Schedule(task.NotBefore, () => EnqueueActivity(task));

    void EndInFlight(InFlightWork work)
    {
        _workers.End(work);
        switch (work)
        {
            case InFlightEpisode o:
                if (ReferenceEquals(o.Instance.InFlight, o)) o.Instance.InFlight = null;
                break;
            case InFlightEntityBatch e:
                if (ReferenceEquals(e.Entity.InFlight, e)) e.Entity.InFlight = null;
                break;
        }
    }

    /// <summary>Returns work in flight to its queue, to be redelivered after a growing delay.</summary>
    void Abandon(InFlightWork work)
    {
        EndInFlight(work);
        switch (work)
        {
            case InFlightEpisode o:
                var instance = o.Instance;
                if (!_instances.TryGetValue(instance.InstanceId, out var current) || !ReferenceEquals(current, instance)) return;
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

public sealed record WorkerInfo(string WorkerId, string TaskHub, DateTime ConnectedAt, int OrchestrationsInFlight, int ActivitiesInFlight, int EntitiesInFlight);

/// <summary>Work waiting for a worker, by type, and work items handed out but not yet completed.</summary>
public sealed record BacklogInfo(int Orchestrations, int Activities, int Entities, int InFlight)
{
    public int Pending => Orchestrations + Activities + Entities;
}
