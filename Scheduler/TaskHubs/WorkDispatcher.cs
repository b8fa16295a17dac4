using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Dispatch;
using DurableTask.Scheduler.Entities;
using DurableTask.Scheduler.Protocol.Wire;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>What the dispatcher asks of its hub for work it cannot hand out as it stands.</summary>
interface IDispatchOwner
{
    /// <summary>A queued instance is not runnable any more (held, backing off, or its work taken): decide again when it is.</summary>
    void Reconsider(Instance instance);

    /// <summary>A queued entity cannot run a batch now (locked, waiting, or empty): let its rules decide again.</summary>
    void Reconsider(Entity entity);
}

/// <summary>
/// The ready queues of one task hub and the push of their work to connected workers: which ready work may go (its
/// commit is durable), to which worker (<see cref="WorkerPool"/>: capacity, filters, round robin), and the encoding of
/// each work item onto the worker's stream. Work in flight is recorded with the pool until it completes or is
/// abandoned. Not thread-safe: the hub calls it under its lock, and <see cref="Pump"/> after every change.
/// </summary>
sealed class WorkDispatcher
{
    readonly string _hub;
    readonly SchedulerOptions _options;
    readonly TimeProvider _time;
    readonly CommitPipeline _commits;
    readonly IDispatchOwner _owner;

    /// <summary>The entity parameters every orchestrator work item carries, encoded once.</summary>
    static readonly byte[] EntityParameters = new OrchestratorEntityParameters
    {
        EntityMessageReorderWindow = Duration.FromTimeSpan(TimeSpan.Zero),
    }.ToByteArray();

    readonly LinkedList<Instance> _orchestrations = new();
    readonly LinkedList<ActivityTask> _activities = new();
    readonly LinkedList<Entity> _entities = new();

    /// <summary>Ready instances whose latest change is not durable yet; they rejoin the ready queue after its commit.</summary>
    readonly List<Instance> _awaitingCommit = new();

    // Ready work that no connected worker's filters accept (its name, or its version): set aside, so the pumps do not
    // walk past it after every change, and queued again when a worker connects (WorkerConnected). Instances stay Queued.
    readonly List<Instance> _unservedOrchestrations = new();
    readonly List<ActivityTask> _unservedActivities = new();
    readonly List<Entity> _unservedEntities = new();

    public WorkDispatcher(string hub, SchedulerOptions options, TimeProvider time, CommitPipeline commits, IDispatchOwner owner)
    {
        _hub = hub;
        _options = options;
        _time = time;
        _commits = commits;
        _owner = owner;
    }

    /// <summary>The connected workers and the work in flight with them.</summary>
    public WorkerPool Workers { get; } = new();

    public BacklogInfo Backlog =>
        new(_orchestrations.Count + _awaitingCommit.Count + _unservedOrchestrations.Count, _activities.Count + _unservedActivities.Count,
            _entities.Count + _unservedEntities.Count, Workers.InFlightCount);

    /// <summary>
    /// The work of <see cref="Backlog"/> grouped by type, name and version, with the number of connected workers that
    /// accept each group. Walks the ready queues: for the API, not for gauges.
    /// </summary>
    public List<BacklogGroup> GroupBacklog()
    {
        var groups = new BacklogGroups();
        foreach (var instance in _orchestrations) groups.Add(WorkKind.Orchestration, instance.Name, instance.Version);
        foreach (var instance in _awaitingCommit) groups.Add(WorkKind.Orchestration, instance.Name, instance.Version);
        foreach (var instance in _unservedOrchestrations) groups.Add(WorkKind.Orchestration, instance.Name, instance.Version);
        foreach (var task in _activities) groups.Add(WorkKind.Activity, task.Name, task.Version);
        foreach (var task in _unservedActivities) groups.Add(WorkKind.Activity, task.Name, task.Version);
        foreach (var entity in _entities) groups.Add(WorkKind.Entity, entity.Name, null);
        foreach (var entity in _unservedEntities) groups.Add(WorkKind.Entity, entity.Name, null);
        return groups.ToList(Workers);
    }

    /// <summary>Queues a runnable instance for its next episode (once: <see cref="Instance.Queued"/> marks it).</summary>
    public void Enqueue(Instance instance)
    {
        if (instance.Queued) return;
        instance.Queued = true;
        instance.ReadySince = _time.GetTimestamp();
        _orchestrations.AddLast(instance);
    }

    /// <summary>Queues an activity whose time has come (activities go out in the order their episodes committed).</summary>
    public void Enqueue(ActivityTask task)
    {
        task.ReadySince = _time.GetTimestamp();
        _activities.AddLast(task);
    }

    public void Enqueue(Entity entity)
    {
        if (entity.Queued) return;
        entity.Queued = true;
        _entities.AddLast(entity);
    }

    /// <summary>Moves instances parked until their commit back to the ready queue once it is durable. Runs after each commit.</summary>
    public void ReleaseCommitted()
    {
        if (_awaitingCommit.Count == 0) return;
        int kept = 0;
        for (int i = 0; i < _awaitingCommit.Count; i++)
        {
            var instance = _awaitingCommit[i];
            if (_commits.IsCommitted(instance.DirtyEpoch)) _orchestrations.AddLast(instance);
            else _awaitingCommit[kept++] = instance;
        }

        _awaitingCommit.RemoveRange(kept, _awaitingCommit.Count - kept);
    }

    /// <summary>A worker connected: the work no worker accepted is queued again (the caller pumps next).</summary>
    public void WorkerConnected()
    {
        foreach (var instance in _unservedOrchestrations) _orchestrations.AddLast(instance);
        _unservedOrchestrations.Clear();
        // Committed activities go back in front, so the queue stays in commit order.
        for (int i = _unservedActivities.Count - 1; i >= 0; i--) _activities.AddFirst(_unservedActivities[i]);
        _unservedActivities.Clear();
        foreach (var entity in _unservedEntities) _entities.AddLast(entity);
        _unservedEntities.Clear();
    }

    /// <summary>Hands as much ready work as the connected workers can take.</summary>
    public void Pump()
    {
        if (Workers.Count == 0) return;
        if (_orchestrations.Count > 0) PumpOrchestrations();
        if (_activities.Count > 0) PumpActivities();
        if (_entities.Count > 0) PumpEntities();
    }

    void PumpOrchestrations()
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var node = _orchestrations.First;
        while (node is not null)
        {
            var next = node.Next;
            var instance = node.Value;
            if (!instance.IsRunnable(now))
            {
                _orchestrations.Remove(node);
                instance.Queued = false;
                _owner.Reconsider(instance);
                node = next;
                continue;
            }

            if (!_commits.IsCommitted(instance.DirtyEpoch))
            {
                // Parked until its batch is durable, so the pumps in between do not walk it again (it stays Queued).
                _orchestrations.Remove(node);
                _awaitingCommit.Add(instance);
                node = next;
                continue;
            }

            var worker = Workers.Pick(WorkKind.Orchestration, instance.Name, instance.Version, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _orchestrations.Remove(node);
                instance.Queued = false;
                SendOrchestration(worker, instance, now);
            }
            else if (Workers.CountAccepting(WorkKind.Orchestration, instance.Name, instance.Version) == 0)
            {
                _orchestrations.Remove(node);
                _unservedOrchestrations.Add(instance);
            }

            node = next;
        }
    }

    void PumpActivities()
    {
        var node = _activities.First;
        while (node is not null)
        {
            var next = node.Next;
            var task = node.Value;
            // Tasks are queued in commit order, so the rest are not durable either (a redelivered task behind one
            // waits for the next commit, after which the pump runs again).
            if (!_commits.IsCommitted(task.Epoch)) return;

            var worker = Workers.Pick(WorkKind.Activity, task.Name, task.Version, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _activities.Remove(node);
                SendActivity(worker, task);
            }
            else if (Workers.CountAccepting(WorkKind.Activity, task.Name, task.Version) == 0)
            {
                _activities.Remove(node);
                _unservedActivities.Add(task);
            }

            node = next;
        }
    }

    void PumpEntities()
    {
        var node = _entities.First;
        while (node is not null)
        {
            var next = node.Next;
            var entity = node.Value;
            if (!EntityRules.CanRunBatch(entity))
            {
                _entities.Remove(node);
                entity.Queued = false;
                _owner.Reconsider(entity);
                node = next;
                continue;
            }

            if (!_commits.IsCommitted(entity.DirtyEpoch))
            {
                node = next;
                continue;
            }

            var worker = Workers.Pick(WorkKind.Entity, entity.Name, null, out bool anyCapacity);
            if (!anyCapacity) return;
            if (worker is not null)
            {
                _entities.Remove(node);
                entity.Queued = false;
                SendEntityBatch(worker, entity);
            }
            else if (Workers.CountAccepting(WorkKind.Entity, entity.Name, null) == 0)
            {
                _entities.Remove(node);
                _unservedEntities.Add(entity);
            }

            node = next;
        }
    }

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
            Token = Workers.NewToken('o'),
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
        Workers.Hand(work);
        worker.Outbox.Writer.TryWrite(OutboundWorkItem.Orchestrator(
            instance.InstanceId, work.ExecutionId, EntityParameters, streaming, instance.TraceContext, pastEvents, newEvents, work.Token));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "orchestrator"), new KeyValuePair<string, object?>("hub", _hub));
        SchedulerTelemetry.TraceDispatch(_hub, "orchestrator", instance.Name, instance.InstanceId, instance.ParentTraceContext, _time, instance.ReadySince);
    }

    void SendActivity(WorkerConnection worker, ActivityTask task)
    {
        var work = new InFlightActivity { Token = Workers.NewToken('a'), Worker = worker, Task = task };
        Workers.Hand(work);
        worker.Outbox.Writer.TryWrite(OutboundWorkItem.Activity(task.Request, work.Token));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "activity"), new KeyValuePair<string, object?>("hub", _hub));
        SchedulerTelemetry.TraceDispatch(_hub, "activity", task.Name, task.InstanceId, task.ParentTraceContext, _time, task.ReadySince);
    }

    void SendEntityBatch(WorkerConnection worker, Entity entity)
    {
        var batch = EntityRules.TakeBatch(entity);
        var request = new EntityRequest { InstanceId = entity.InstanceId, ExecutionId = "", EntityState = entity.State };
        foreach (var message in batch) request.OperationRequests.Add(message.Event);

        var work = new InFlightEntityBatch { Token = Workers.NewToken('e'), Worker = worker, Entity = entity, Batch = batch };
        entity.InFlight = work;
        Workers.Hand(work);
        worker.Outbox.Writer.TryWrite(new OutboundWorkItem(new WorkItem { EntityRequestV2 = request, CompletionToken = work.Token }));
        SchedulerTelemetry.WorkItemsDispatched.Add(1, new KeyValuePair<string, object?>("type", "entity"), new KeyValuePair<string, object?>("hub", _hub));
    }

    /// <summary>The work is no longer in flight (completed, abandoned or dropped): its worker and its owner let go of it.</summary>
    public void End(InFlightWork work)
    {
        Workers.End(work);
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
}
