using DurableTask.Scheduler.Protocol.Wire;
using DurableTask.Scheduler.Orchestration;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;
using Xunit;
using EventType = Microsoft.DurableTask.Protobuf.HistoryEvent.EventTypeOneofCase;

namespace DurableTask.Scheduler.Tests.Orchestration;

/// <summary>
/// The orchestration state machine on its own: hand-built histories and inboxes, a fixed clock, and a sink that records
/// every effect, with no server, store or lock.
/// </summary>
public sealed class OrchestrationStateMachineTests
{
    static readonly DateTime T0 = new(2026, 12, 7, 12, 0, 0, DateTimeKind.Utc);
    static readonly TimeSpan MaxHold = TimeSpan.FromSeconds(2);

    int _executions;
    readonly OrchestrationStateMachine _machine;
    readonly RecordingEffects _effects = new();

    public OrchestrationStateMachineTests() => _machine = new OrchestrationStateMachine(MaxHold, () => $"exec-{++_executions}");

    /// <summary>A running instance whose history holds its start and one completed episode.</summary>
    static InstanceState Running(string id = "orch", ParentInstanceInfo? parent = null, params HistoryEvent[] more)
    {
        var instance = new InstanceState(id) { Name = "Flow", ExecutionId = "exec-0", Status = OrchestrationStatus.Running, CreatedAt = T0 };
        instance.AppendHistory(OrchestratorStarted(T0));
        instance.AppendHistory(Started(id, "exec-0", parent));
        foreach (var e in more) instance.AppendHistory(e);
        instance.AppendHistory(new HistoryEvent { EventId = -1, Timestamp = Timestamp.FromDateTime(T0), OrchestratorCompleted = new() });
        return instance;
    }

    static HistoryEvent OrchestratorStarted(DateTime at) => new() { EventId = -1, Timestamp = Timestamp.FromDateTime(at), OrchestratorStarted = new() };

    static HistoryEvent Started(string id, string executionId, ParentInstanceInfo? parent = null) => new()
    {
        EventId = -1,
        Timestamp = Timestamp.FromDateTime(T0),
        ExecutionStarted = new ExecutionStartedEvent
        {
            Name = "Flow", Version = "1.0", Input = "\"in\"", ParentInstance = parent, Tags = { ["team"] = "a" },
            OrchestrationInstance = new OrchestrationInstance { InstanceId = id, ExecutionId = executionId },
        },
    };

    static HistoryEvent Event(Action<HistoryEvent> fill, int eventId = -1)
    {
        var e = new HistoryEvent { EventId = eventId, Timestamp = Timestamp.FromDateTime(T0) };
        fill(e);
        return e;
    }

    static HistoryEvent Scheduled(int id) => Event(e => e.TaskScheduled = new TaskScheduledEvent { Name = "Work", Input = $"{id}" }, id);
    static HistoryEvent Completed(int id) => Event(e => e.TaskCompleted = new TaskCompletedEvent { TaskScheduledId = id, Result = "ok" });
    static HistoryEvent TimerCreated(int id, DateTime at) => Event(e => e.TimerCreated = new TimerCreatedEvent { FireAt = Timestamp.FromDateTime(at) }, id);
    static HistoryEvent ChildCreated(int id, string child) =>
        Event(e => e.SubOrchestrationInstanceCreated = new SubOrchestrationInstanceCreatedEvent { InstanceId = child, Name = "Child" }, id);

    static OrchestratorAction Complete(OrchestrationStatus status, string? result = null, TaskFailureDetails? failure = null) => new()
    {
        Id = 9, CompleteOrchestration = new CompleteOrchestrationAction { OrchestrationStatus = status, Result = result, FailureDetails = failure },
    };

    /// <summary>An episode that processed the whole inbox, encoded again from the messages (no work item bytes).</summary>
    void Apply(InstanceState instance, DateTime now, params OrchestratorAction[] actions) =>
        _machine.ApplyEpisode(instance, new Episode(now, instance.InboxCount, default, null, actions), _effects, now);

    static List<EventType> Types(InstanceState instance) => instance.History.Select(e => e.EventTypeCase).ToList();

    [Fact]
    public void Schedule_task_records_the_event_asks_for_the_activity_and_counts_it_open()
    {
        var instance = Running();
        var now = T0.AddSeconds(1);
        Apply(instance, now,
            new OrchestratorAction { Id = 0, ScheduleTask = new ScheduleTaskAction { Name = "Greet", Version = "2", Input = "\"Tokyo\"", Tags = { ["k"] = "v" } } },
            new OrchestratorAction { Id = 1, ScheduleTask = new ScheduleTaskAction { Name = "Greet", Input = "\"Paris\"" } });

        Assert.Equal(
            [EventType.OrchestratorStarted, EventType.ExecutionStarted, EventType.OrchestratorCompleted,
             EventType.OrchestratorStarted, EventType.TaskScheduled, EventType.TaskScheduled, EventType.OrchestratorCompleted],
            Types(instance));
        var scheduled = instance.History[4];
        Assert.Equal(0, scheduled.EventId);
        Assert.Equal("Greet", scheduled.TaskScheduled.Name);
        Assert.Equal("2", scheduled.TaskScheduled.Version);
        Assert.Equal("\"Tokyo\"", scheduled.TaskScheduled.Input);
        Assert.Equal("v", scheduled.TaskScheduled.Tags["k"]);
        Assert.Equal(now, scheduled.Timestamp.ToDateTime());
        Assert.Equal(["activity orch#0 Greet \"Tokyo\" live", "activity orch#1 Greet \"Paris\" live"], _effects.Log);
        Assert.Equal(2, instance.OpenActivities);
        Assert.Equal(OrchestrationStatus.Running, instance.Status);
        Assert.Equal(now, instance.LastUpdatedAt);
    }

    [Fact]
    public void Create_timer_records_the_event_and_arms_the_timer()
    {
        var instance = Running();
        var fireAt = T0.AddMinutes(5);
        Apply(instance, T0, new OrchestratorAction { Id = 3, CreateTimer = new CreateTimerAction { FireAt = Timestamp.FromDateTime(fireAt) } });

        var created = instance.History.Single(e => e.EventTypeCase == EventType.TimerCreated);
        Assert.Equal(3, created.EventId);
        Assert.Equal(fireAt, created.TimerCreated.FireAt.ToDateTime());
        Assert.Equal([$"timer orch#3 {fireAt:O}"], _effects.Log);
    }

    [Fact]
    public void Create_sub_orchestration_records_the_event_and_starts_the_child()
    {
        var instance = Running();
        Apply(instance, T0, new OrchestratorAction
        {
            Id = 4,
            CreateSubOrchestration = new CreateSubOrchestrationAction { InstanceId = "kid", Name = "Child", Version = "3", Input = "1", Tags = { ["t"] = "x" } },
        });

        var created = instance.History.Single(e => e.EventTypeCase == EventType.SubOrchestrationInstanceCreated).SubOrchestrationInstanceCreated;
        Assert.Equal(("kid", "Child", "3", "1", "x"), (created.InstanceId, created.Name, created.Version, created.Input, created.Tags["t"]));
        Assert.Equal(["child orch#4 kid Child"], _effects.Log);
    }

    [Fact]
    public void Send_event_records_it_and_sends_it_to_its_target()
    {
        var instance = Running();
        Apply(instance, T0,
            new OrchestratorAction { Id = 5, SendEvent = new SendEventAction { Instance = new OrchestrationInstance { InstanceId = "other", ExecutionId = "e9" }, Name = "Go", Data = "7" } },
            new OrchestratorAction { Id = 6, SendEvent = new SendEventAction { Instance = new OrchestrationInstance { InstanceId = "@counter@a" }, Name = "op", Data = "{}" } });

        var sent = instance.History.Where(e => e.EventTypeCase == EventType.EventSent).Select(e => (e.EventId, e.EventSent.InstanceId, e.EventSent.Name)).ToList();
        Assert.Equal([(5, "other", "Go"), (6, "@counter@a", "op")], sent);
        Assert.Equal(["event other/e9 Go 7", "event @counter@a/ op {}"], _effects.Log);
    }

    [Fact]
    public void Terminate_action_sends_a_termination_and_records_nothing_of_its_own()
    {
        var instance = Running();
        Apply(instance, T0, new OrchestratorAction { Id = 7, TerminateOrchestration = new TerminateOrchestrationAction { InstanceId = "victim", Reason = "stop", Recurse = true } });

        Assert.DoesNotContain(instance.History, e => e.EventId == 7);
        Assert.Equal(["to victim/ ExecutionTerminated"], _effects.Log);
        Assert.Equal(("stop", true), (_effects.Messages[0].ExecutionTerminated.Input, _effects.Messages[0].ExecutionTerminated.Recurse));
    }

    [Fact]
    public void Entity_messages_of_every_kind_are_recorded_and_routed()
    {
        var instance = Running();
        Apply(instance, T0,
            new OrchestratorAction { Id = 10, SendEntityMessage = new SendEntityMessageAction { EntityOperationSignaled = new EntityOperationSignaledEvent { RequestId = "r1", Operation = "add", TargetInstanceId = "@c@a" } } },
            new OrchestratorAction { Id = 11, SendEntityMessage = new SendEntityMessageAction { EntityOperationCalled = new EntityOperationCalledEvent { RequestId = "r2", Operation = "get", TargetInstanceId = "@c@a" } } },
            new OrchestratorAction { Id = 12, SendEntityMessage = new SendEntityMessageAction { EntityLockRequested = new EntityLockRequestedEvent { CriticalSectionId = "cs", LockSet = { "@c@a" } } } },
            new OrchestratorAction { Id = 13, SendEntityMessage = new SendEntityMessageAction { EntityUnlockSent = new EntityUnlockSentEvent { CriticalSectionId = "cs", TargetInstanceId = "@c@a" } } });

        Assert.Equal(
            [EventType.EntityOperationSignaled, EventType.EntityOperationCalled, EventType.EntityLockRequested, EventType.EntityUnlockSent],
            instance.History.Where(e => e.EventId >= 10).Select(e => e.EventTypeCase));
        Assert.Equal(["entity orch EntityOperationSignaled", "entity orch EntityOperationCalled", "entity orch EntityLockRequested", "entity orch EntityUnlockSent"], _effects.Log);
    }

    [Fact]
    public void Every_kind_of_message_processed_goes_into_the_history_in_order_between_the_episode_markers()
    {
        var instance = Running();
        HistoryEvent[] inbox =
        [
            Event(e => e.EventRaised = new EventRaisedEvent { Name = "Approval", Input = "true" }),
            Event(e => e.TimerFired = new TimerFiredEvent { TimerId = 1, FireAt = Timestamp.FromDateTime(T0) }),
            Completed(2),
            Event(e => e.TaskFailed = new TaskFailedEvent { TaskScheduledId = 3, FailureDetails = new TaskFailureDetails { ErrorType = "X" } }),
            Event(e => e.SubOrchestrationInstanceCompleted = new SubOrchestrationInstanceCompletedEvent { TaskScheduledId = 4, Result = "r" }),
            Event(e => e.SubOrchestrationInstanceFailed = new SubOrchestrationInstanceFailedEvent { TaskScheduledId = 5 }),
            Event(e => e.EntityOperationCompleted = new EntityOperationCompletedEvent { RequestId = "q", Output = "1" }),
            Event(e => e.EntityOperationFailed = new EntityOperationFailedEvent { RequestId = "q2" }),
            Event(e => e.EntityLockGranted = new EntityLockGrantedEvent { CriticalSectionId = "cs" }),
            Event(e => e.GenericEvent = new GenericEvent { Data = "g" }),
            Event(e => e.HistoryState = new HistoryStateEvent()),
        ];
        foreach (var e in inbox) Assert.True(OrchestrationStateMachine.Accept(instance, e, null));
        var now = T0.AddSeconds(2);
        Apply(instance, now);

        var episode = instance.History.Skip(3).ToList();
        Assert.Equal(EventType.OrchestratorStarted, episode[0].EventTypeCase);
        Assert.Equal(now, episode[0].Timestamp.ToDateTime());
        Assert.Equal(inbox.Select(e => e.ToString()), episode.Skip(1).Take(inbox.Length).Select(e => e.ToString()));
        Assert.Equal(EventType.OrchestratorCompleted, episode[^1].EventTypeCase);
        Assert.Equal(0, instance.InboxCount);
    }

    [Fact]
    public void The_work_items_encoding_of_the_messages_is_appended_as_it_was_sent()
    {
        // Two instances get the same messages; one episode reuses the bytes the work item carried, one encodes again.
        var viaBytes = Running("a");
        var viaMessages = Running("a");
        var messages = new[] { Completed(0), Event(e => e.EventRaised = new EventRaisedEvent { Name = "E", Input = "1" }) };
        foreach (var e in messages)
        {
            OrchestrationStateMachine.Accept(viaBytes, e, null);
            OrchestrationStateMachine.Accept(viaMessages, e, null);
        }

        var startedAt = T0.AddSeconds(3);
        var (fields, count) = OutboundWorkItem.EncodeNewEvents(startedAt, viaBytes.Inbox, 1000, 1 << 20);
        Assert.Equal(2, count);
        _machine.ApplyEpisode(viaBytes, new Episode(startedAt, count, fields, null, []), _effects, startedAt);
        _machine.ApplyEpisode(viaMessages, new Episode(startedAt, count, default, null, []), _effects, startedAt);

        Assert.Equal(viaMessages.Encoded.PastEvents.ToArray(), viaBytes.Encoded.PastEvents.ToArray());
    }

    [Fact]
    public void Messages_the_episode_did_not_process_stay_in_the_inbox()
    {
        var instance = Running();
        var first = Event(e => e.EventRaised = new EventRaisedEvent { Name = "one" });
        var second = Event(e => e.EventRaised = new EventRaisedEvent { Name = "two" });
        OrchestrationStateMachine.Accept(instance, first, null);
        OrchestrationStateMachine.Accept(instance, second, null);

        _machine.ApplyEpisode(instance, new Episode(T0, 1, default, "waiting", []), _effects, T0);

        Assert.Same(second, Assert.Single(instance.Inbox));
        Assert.Contains(instance.History, e => e.EventRaised?.Name == "one");
        Assert.DoesNotContain(instance.History, e => e.EventRaised?.Name == "two");
        Assert.Equal("waiting", instance.CustomStatus);
    }

    [Fact]
    public void Completing_ends_the_execution_and_tells_the_parent()
    {
        var parent = new ParentInstanceInfo { TaskScheduledId = 8, OrchestrationInstance = new OrchestrationInstance { InstanceId = "mom", ExecutionId = "m1" } };
        var instance = Running("kid", parent);
        OrchestrationStateMachine.Accept(instance, Event(e => e.EventRaised = new EventRaisedEvent { Name = "late" }), null);
        var now = T0.AddSeconds(4);
        _machine.ApplyEpisode(instance, new Episode(now, 0, default, null, [Complete(OrchestrationStatus.Completed, "\"done\"")]), _effects, now);

        Assert.Equal(OrchestrationStatus.Completed, instance.Status);
        Assert.Equal("\"done\"", instance.Output);
        Assert.Equal(now, instance.CompletedAt);
        Assert.Equal(0, instance.InboxCount); // what was still to process is dropped with the execution
        var completed = instance.History.Single(e => e.EventTypeCase == EventType.ExecutionCompleted).ExecutionCompleted;
        Assert.Equal(OrchestrationStatus.Completed, completed.OrchestrationStatus);
        Assert.Equal(["ended kid Completed", "to mom/m1 SubOrchestrationInstanceCompleted"], _effects.Log);
        Assert.Equal((8, "\"done\""), (_effects.Messages[0].SubOrchestrationInstanceCompleted.TaskScheduledId, _effects.Messages[0].SubOrchestrationInstanceCompleted.Result));
        Assert.False(OrchestrationStateMachine.Accept(instance, Completed(0), null));
    }

    [Fact]
    public void A_failed_sub_orchestration_reports_its_failure_to_the_parent()
    {
        var parent = new ParentInstanceInfo { TaskScheduledId = 2, OrchestrationInstance = new OrchestrationInstance { InstanceId = "mom", ExecutionId = "m1" } };
        var instance = Running("kid", parent);
        var failure = new TaskFailureDetails { ErrorType = "InvalidOperationException", ErrorMessage = "boom" };
        Apply(instance, T0, Complete(OrchestrationStatus.Failed, null, failure));

        Assert.Equal(OrchestrationStatus.Failed, instance.Status);
        Assert.Equal("boom", instance.Failure!.ErrorMessage);
        var failed = _effects.Messages.Single().SubOrchestrationInstanceFailed;
        Assert.Equal(2, failed.TaskScheduledId);
        Assert.Equal(("InvalidOperationException", "boom"), (failed.FailureDetails.ErrorType, failed.FailureDetails.ErrorMessage));
    }

    [Fact]
    public void A_terminated_sub_orchestration_tells_its_parent_it_was_terminated()
    {
        var parent = new ParentInstanceInfo { TaskScheduledId = 2, OrchestrationInstance = new OrchestrationInstance { InstanceId = "mom", ExecutionId = "m1" } };
        var instance = Running("kid", parent);
        OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionTerminated = new ExecutionTerminatedEvent { Input = "enough" }), null);
        Apply(instance, T0, Complete(OrchestrationStatus.Terminated, "enough"));

        var failure = _effects.Messages.Single().SubOrchestrationInstanceFailed.FailureDetails;
        Assert.Equal("OrchestrationTerminated", failure.ErrorType);
        Assert.Equal("Sub-orchestration 'kid' was terminated: enough", failure.ErrorMessage);
        Assert.True(failure.IsNonRetriable);
    }

    [Fact]
    public void A_recursive_termination_reaches_every_child_the_instance_started()
    {
        var instance = Running("orch", null, ChildCreated(1, "c1"), ChildCreated(2, "c2"));
        OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionTerminated = new ExecutionTerminatedEvent { Input = "why", Recurse = true }), null);
        Apply(instance, T0, Complete(OrchestrationStatus.Terminated, "why"));

        Assert.Equal(OrchestrationStatus.Terminated, instance.Status);
        Assert.Equal(["ended orch Terminated", "terminate-child c1 why", "terminate-child c2 why"], _effects.Log);
    }

    [Fact]
    public void A_termination_that_does_not_recurse_leaves_the_children_alone()
    {
        var instance = Running("orch", null, ChildCreated(1, "c1"));
        OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionTerminated = new ExecutionTerminatedEvent { Input = "why" }), null);
        Apply(instance, T0, Complete(OrchestrationStatus.Terminated, "why"));

        Assert.Equal(["ended orch Terminated"], _effects.Log);
    }

    [Fact]
    public void An_instance_that_never_ran_is_terminated_by_the_scheduler_with_a_complete_history()
    {
        var instance = new InstanceState("fresh") { Name = "Flow", ExecutionId = "exec-0", Status = OrchestrationStatus.Pending };
        OrchestrationStateMachine.Accept(instance, Started("fresh", "exec-0"), null);
        var now = T0.AddSeconds(9);
        OrchestrationStateMachine.TerminateAtOnce(instance, "not needed", recurse: false, _effects, now);

        Assert.Equal([EventType.ExecutionStarted, EventType.ExecutionTerminated, EventType.ExecutionCompleted], Types(instance));
        Assert.Equal(OrchestrationStatus.Terminated, instance.Status);
        Assert.Equal("not needed", instance.Output);
        Assert.Equal(now, instance.LastUpdatedAt);
        Assert.Equal(["ended fresh Terminated"], _effects.Log);
    }

    [Fact]
    public void Suspend_and_resume_messages_decide_the_status_after_the_episode()
    {
        var instance = Running();
        OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionSuspended = new ExecutionSuspendedEvent { Input = "pause" }), null);
        Apply(instance, T0);
        Assert.Equal(OrchestrationStatus.Suspended, instance.Status);

        // Still suspended after an episode that saw no resume.
        OrchestrationStateMachine.Accept(instance, Event(e => e.EventRaised = new EventRaisedEvent { Name = "x" }), null);
        Apply(instance, T0);
        Assert.Equal(OrchestrationStatus.Suspended, instance.Status);

        OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionResumed = new ExecutionResumedEvent { Input = "go" }), null);
        Apply(instance, T0);
        Assert.Equal(OrchestrationStatus.Running, instance.Status);
    }

    [Fact]
    public void Continue_as_new_starts_a_new_execution_with_the_carried_over_events_then_what_arrived_meanwhile()
    {
        var instance = Running("loop", null, Scheduled(0));
        Assert.Equal(0, instance.OpenActivities); // hand-built: nothing counted yet
        instance.OpenActivities = 1;
        var waiting = Event(e => e.EventRaised = new EventRaisedEvent { Name = "later" });
        OrchestrationStateMachine.Accept(instance, waiting, null);
        var carried = Event(e => e.EventRaised = new EventRaisedEvent { Name = "carried" });
        var now = T0.AddMinutes(1);
        var action = new OrchestratorAction
        {
            Id = 1,
            CompleteOrchestration = new CompleteOrchestrationAction
            {
                OrchestrationStatus = OrchestrationStatus.ContinuedAsNew, Result = "\"next\"", NewVersion = "2.0", CarryoverEvents = { carried },
            },
        };
        // The worker did not process the waiting event: it is delivered to the new execution.
        _machine.ApplyEpisode(instance, new Episode(now, 0, default, null, [action]), _effects, now);

        Assert.Equal("exec-1", instance.ExecutionId);
        Assert.Equal(OrchestrationStatus.Running, instance.Status);
        Assert.Equal("2.0", instance.Version);
        Assert.Equal("\"next\"", instance.Input);
        Assert.Equal(0, instance.HistoryCount);
        Assert.Equal(0, instance.OpenActivities);
        Assert.Equal(1, instance.HistoryGeneration);
        Assert.Equal(3, instance.InboxCount);
        var start = instance.Inbox[0].ExecutionStarted;
        Assert.Equal(("Flow", "2.0", "\"next\"", "exec-1", "a"), (start.Name, start.Version, start.Input, start.OrchestrationInstance.ExecutionId, start.Tags["team"]));
        Assert.Same(carried, instance.Inbox[1]);
        Assert.Same(waiting, instance.Inbox[2]);
        Assert.Empty(_effects.Log); // no end of an execution as far as the world is concerned
    }

    static OrchestratorAction ContinueAsNew(string? newVersion, params (string Key, string Value)[] tags)
    {
        var complete = new CompleteOrchestrationAction { OrchestrationStatus = OrchestrationStatus.ContinuedAsNew, Result = "\"next\"", NewVersion = newVersion };
        foreach (var (key, value) in tags) complete.Tags[key] = value;
        return new OrchestratorAction { Id = 1, CompleteOrchestration = complete };
    }

    [Fact]
    public void Continue_as_new_with_tags_gives_the_new_execution_those_tags_instead_of_the_old_ones()
    {
        var instance = Running("loop");
        instance.Tags = new MapField<string, string> { ["team"] = "a" };
        Apply(instance, T0, ContinueAsNew(null, ("team", "b"), ("stage", "2")));

        var start = instance.Inbox[0].ExecutionStarted;
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, start.Tags);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "b", ["stage"] = "2" }, instance.ToState(includePayloads: false).Tags);
        // Without a new version the execution keeps the old one.
        Assert.Equal("1.0", start.Version);
    }

    [Fact]
    public void Continue_as_new_without_tags_keeps_the_tags_the_instance_had()
    {
        var instance = Running("loop");
        instance.Tags = new MapField<string, string> { ["team"] = "a" };
        Apply(instance, T0, ContinueAsNew("3.0"));

        var start = instance.Inbox[0].ExecutionStarted;
        Assert.Equal(new Dictionary<string, string> { ["team"] = "a" }, start.Tags);
        Assert.Equal(new Dictionary<string, string> { ["team"] = "a" }, instance.ToState(includePayloads: false).Tags);
        Assert.Equal(("3.0", "3.0"), (start.Version, instance.Version));
    }

    [Fact]
    public void A_termination_at_once_ends_a_running_instance_without_an_episode_and_tells_its_parent()
    {
        var parent = new ParentInstanceInfo { TaskScheduledId = 4, OrchestrationInstance = new OrchestrationInstance { InstanceId = "mom", ExecutionId = "m1" } };
        var instance = Running("kid", parent, Scheduled(0));
        instance.OpenActivities = 1;
        OrchestrationStateMachine.Accept(instance, Event(e => e.EventRaised = new EventRaisedEvent { Name = "unread" }), null);
        var now = T0.AddSeconds(5);
        OrchestrationStateMachine.TerminateAtOnce(instance, "stuck", recurse: false, _effects, now);

        Assert.Equal(
            [EventType.OrchestratorStarted, EventType.ExecutionStarted, EventType.TaskScheduled, EventType.OrchestratorCompleted,
             EventType.ExecutionTerminated, EventType.ExecutionCompleted], Types(instance));
        Assert.Equal((OrchestrationStatus.Terminated, "stuck", now), (instance.Status, instance.Output, instance.CompletedAt));
        Assert.Equal(0, instance.InboxCount);
        Assert.Equal(0, instance.OpenActivities);
        Assert.Equal(4, _effects.Messages.Single().SubOrchestrationInstanceFailed.TaskScheduledId);
        // A message arriving afterwards (the activity's result) is dropped.
        Assert.False(OrchestrationStateMachine.Accept(instance, Completed(0), null));
    }

    [Fact]
    public void A_rewind_replaces_the_history_runs_again_and_restores_children_without_a_result()
    {
        var instance = Running("orch", null, ChildCreated(1, "done"), ChildCreated(2, "failed"));
        instance.Status = OrchestrationStatus.Failed;
        instance.Failure = new TaskFailureDetails { ErrorMessage = "x" };
        instance.CompletedAt = T0;
        var newHistory = new[]
        {
            OrchestratorStarted(T0), Started("orch", "exec-r"), ChildCreated(1, "done"), ChildCreated(2, "failed"),
            Event(e => e.SubOrchestrationInstanceCompleted = new SubOrchestrationInstanceCompletedEvent { TaskScheduledId = 1 }),
        };
        OrchestrationStateMachine.Accept(instance, OrchestrationStateMachine.BeginRewind(instance, "retry", null, T0), null);
        Assert.Equal(OrchestrationStatus.Running, instance.Status);
        Assert.Null(instance.CompletedAt);

        var rewind = new OrchestratorAction { RewindOrchestration = new RewindOrchestrationAction { NewHistory = { newHistory } } };
        var now = T0.AddSeconds(30);
        _machine.ApplyEpisode(instance, new Episode(now, 1, default, null, [rewind]), _effects, now);

        Assert.Equal(newHistory.Select(e => e.ToString()), instance.History.Select(e => e.ToString()));
        Assert.Equal("exec-r", instance.ExecutionId);
        Assert.Equal(OrchestrationStatus.Running, instance.Status);
        Assert.Null(instance.Failure);
        Assert.True(instance.ReplayRequested);
        Assert.Equal(0, instance.InboxCount);
        Assert.Equal(["rewind-child orch#2 failed"], _effects.Log);
    }

    [Fact]
    public void Messages_for_another_execution_or_a_finished_instance_are_dropped()
    {
        var instance = Running();
        Assert.False(OrchestrationStateMachine.Accept(instance, Completed(0), "another-execution"));
        Assert.True(OrchestrationStateMachine.Accept(instance, Completed(0), "exec-0"));
        Apply(instance, T0, Complete(OrchestrationStatus.Completed));
        Assert.False(OrchestrationStateMachine.Accept(instance, Event(e => e.EventRaised = new EventRaisedEvent { Name = "late" }), null));
        Assert.True(OrchestrationStateMachine.Accept(instance, Event(e => e.ExecutionRewound = new ExecutionRewoundEvent()), null));
    }

    /// <summary>A fan-out whose history is past the hold threshold: <paramref name="open"/> of its activities unanswered.</summary>
    static InstanceState LargeFanOut(int scheduled, int open)
    {
        var events = new List<HistoryEvent>();
        for (int i = 0; i < scheduled; i++) events.Add(Scheduled(i));
        for (int i = 0; i < scheduled - open; i++) events.Add(Completed(i));
        return Running("fan", null, [.. events]);
    }

    [Fact]
    public void A_long_history_with_activities_out_waits_for_more_results_and_the_last_one_ends_the_wait()
    {
        var instance = LargeFanOut(0, 0);
        var now = T0.AddSeconds(1);
        var actions = Enumerable.Range(0, 2_500).Select(i => new OrchestratorAction { Id = i, ScheduleTask = new ScheduleTaskAction { Name = "Part" } }).ToArray();
        Apply(instance, now, actions);
        Assert.Equal(2_500, instance.OpenActivities);
        // 0.1 ms per history event: 2,505 events.
        Assert.Equal(now + TimeSpan.FromMilliseconds(instance.HistoryCount / 10.0), instance.HeldUntil);

        for (int i = 0; i < 2_499; i++) OrchestrationStateMachine.Accept(instance, Completed(i), null);
        Assert.NotEqual(default, instance.HeldUntil);
        OrchestrationStateMachine.Accept(instance, Completed(2_499), null);
        Assert.Equal(0, instance.OpenActivities);
        Assert.Equal(default, instance.HeldUntil);
    }

    [Fact]
    public void Owed_work_is_derived_from_the_history_after_a_restart_and_the_fan_in_hold_survives()
    {
        // 1,500 activities scheduled, 990 answered in the history, 10 more answered in the inbox: 500 owed.
        var instance = LargeFanOut(1_500, 510);
        for (int i = 990; i < 1_000; i++) OrchestrationStateMachine.Accept(instance, Completed(i), null);
        // What a restart sees: the counts of the process before are gone.
        instance.OpenActivities = 0;
        instance.HeldUntil = default;
        _effects.Log.Clear();

        OrchestrationStateMachine.ResumeOwedWork(instance, _effects);

        Assert.Equal(500, instance.OpenActivities);
        Assert.Equal(Enumerable.Range(1_000, 500).Select(i => $"activity fan#{i} Work {i} recovered"), _effects.Log.Where(l => l.StartsWith("activity")));
        Assert.Equal(500, _effects.Log.Count);

        // The next episode processes the results that came in, and waits for more instead of running once per result.
        var now = T0.AddMinutes(10);
        Apply(instance, now);
        Assert.True(instance.HeldUntil > now, "a recovered fan-out must hold its next episode for more results");
        OrchestrationStateMachine.Accept(instance, Completed(1_000), null);
        Assert.Equal(499, instance.OpenActivities);
        Assert.True(instance.HeldUntil > now);
    }

    [Fact]
    public void Timers_that_came_due_while_down_are_armed_again_and_fired_ones_are_not()
    {
        var now = T0.AddHours(1);
        var instance = Running("sleepy", null,
            TimerCreated(1, T0.AddMinutes(5)),          // came due while the scheduler was down
            TimerCreated(2, now.AddMinutes(5)),         // still ahead
            TimerCreated(3, T0.AddMinutes(1)),
            Event(e => e.TimerFired = new TimerFiredEvent { TimerId = 3, FireAt = Timestamp.FromDateTime(T0.AddMinutes(1)) }));
        OrchestrationStateMachine.Accept(instance, OrchestrationStateMachine.TimerFired(2, Timestamp.FromDateTime(now.AddMinutes(5)), now), "exec-0");
        _effects.Log.Clear();

        OrchestrationStateMachine.ResumeOwedWork(instance, _effects);

        // Timer 2's firing is in the inbox already: only timer 1 is owed. The hub fires a past due time at once.
        Assert.Equal([$"timer sleepy#1 {T0.AddMinutes(5):O}"], _effects.Log);
        var fired = OrchestrationStateMachine.TimerFired(1, Timestamp.FromDateTime(T0.AddMinutes(5)), now);
        Assert.Equal((1, T0.AddMinutes(5), now), (fired.TimerFired.TimerId, fired.TimerFired.FireAt.ToDateTime(), fired.Timestamp.ToDateTime()));
    }

    [Fact]
    public void A_finished_instance_owes_nothing()
    {
        var instance = Running("done", null, Scheduled(0), TimerCreated(1, T0));
        instance.Status = OrchestrationStatus.Completed;
        OrchestrationStateMachine.ResumeOwedWork(instance, _effects);
        Assert.Empty(_effects.Log);
        Assert.Equal(0, instance.OpenActivities);
    }

    /// <summary>
    /// What an instance out of memory may wait for: events, timers (the earliest unfired one is its next) and children,
    /// whose end reads the parent back; not an activity, nor an entity call or lock (either encoding), whose answers the
    /// hub holds in memory; nor anything while it has messages to process or has not started.
    /// </summary>
    [Fact]
    public void May_wait_out_of_memory_for_events_timers_and_children_but_not_activities_or_entities()
    {
        Assert.True(OrchestrationStateMachine.MayWaitOutOfMemory(Running(), out var none));
        Assert.Null(none);

        var timers = Running("t", null, TimerCreated(0, T0.AddHours(2)), TimerCreated(1, T0.AddHours(1)), TimerCreated(2, T0.AddMinutes(30)),
            Event(e => e.TimerFired = new TimerFiredEvent { TimerId = 2, FireAt = Timestamp.FromDateTime(T0.AddMinutes(30)) }));
        Assert.True(OrchestrationStateMachine.MayWaitOutOfMemory(timers, out var next));
        Assert.Equal(T0.AddHours(1), next);

        Assert.True(OrchestrationStateMachine.MayWaitOutOfMemory(Running("c", null, ChildCreated(0, "child")), out _));
        Assert.True(OrchestrationStateMachine.MayWaitOutOfMemory(Running("d", null, Scheduled(0), Completed(0)), out _));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(Running("a", null, Scheduled(0), Scheduled(1), Completed(0)), out _));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(Running("e", null,
            Event(e => e.EntityOperationCalled = new EntityOperationCalledEvent { RequestId = "r", Operation = "get", TargetInstanceId = "@c@a" }, 0)), out _));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(Running("l", null,
            Event(e => e.EntityLockRequested = new EntityLockRequestedEvent { CriticalSectionId = "cs", LockSet = { "@c@a" } }, 0)), out _));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(Running("s", null,
            Event(e => e.EventSent = new EventSentEvent { InstanceId = "@c@a", Name = "op" }, 0)), out _));
        Assert.True(OrchestrationStateMachine.MayWaitOutOfMemory(Running("o", null,
            Event(e => e.EventSent = new EventSentEvent { InstanceId = "other", Name = "ping" }, 0)), out _));

        var busy = Running("b");
        busy.Inbox.Add(Event(e => e.EventRaised = new EventRaisedEvent { Name = "go" }));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(busy, out _));
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(new InstanceState("p") { Status = OrchestrationStatus.Pending, CreatedAt = T0 }, out _));
        var done = Running("f");
        done.Status = OrchestrationStatus.Completed;
        Assert.False(OrchestrationStateMachine.MayWaitOutOfMemory(done, out _));
    }

    sealed class RecordingEffects : IOrchestrationEffects
    {
        public List<string> Log { get; } = new();
        public List<HistoryEvent> Messages { get; } = new();

        public void ScheduleActivity(InstanceState instance, int taskId, string name, string? version, string? input, TraceContext? traceContext,
            MapField<string, string> tags, bool recovered) =>
            Log.Add($"activity {instance.InstanceId}#{taskId} {name} {input} {(recovered ? "recovered" : "live")}");

        public void ArmTimer(InstanceState instance, int timerId, Timestamp fireAt) => Log.Add($"timer {instance.InstanceId}#{timerId} {fireAt.ToDateTime():O}");

        public void StartChild(InstanceState parent, int taskScheduledId, CreateSubOrchestrationAction action) =>
            Log.Add($"child {parent.InstanceId}#{taskScheduledId} {action.InstanceId} {action.Name}");

        public void SendToInstance(string instanceId, string? executionId, HistoryEvent message)
        {
            Messages.Add(message);
            Log.Add($"to {instanceId}/{executionId} {message.EventTypeCase}");
        }

        public void SendEvent(InstanceState sender, string target, string? executionId, string name, string? data) =>
            Log.Add($"event {target}/{executionId} {name} {data}");

        public void SendEntityMessage(InstanceState sender, SendEntityMessageAction action) => Log.Add($"entity {sender.InstanceId} {action.EntityMessageTypeCase}");

        public void ExecutionEnded(InstanceState instance) => Log.Add($"ended {instance.InstanceId} {instance.Status}");

        public void TerminateChild(string childInstanceId, string? reason) => Log.Add($"terminate-child {childInstanceId} {reason}");

        public void RewindChild(InstanceState parent, int taskScheduledId, SubOrchestrationInstanceCreatedEvent created) =>
            Log.Add($"rewind-child {parent.InstanceId}#{taskScheduledId} {created.InstanceId}");
    }
}
