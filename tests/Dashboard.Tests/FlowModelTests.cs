using DurableTask.Dashboard.Api;
using DurableTask.Dashboard.Components;

namespace DurableTask.Dashboard.Tests;

/// <summary>The flow built from hand-made histories and timelines: episodes, fan-outs, retries, loops, received events.</summary>
public sealed class FlowModelTests
{
    static readonly DateTime T0 = new(2026, 1, 31, 12, 0, 0, DateTimeKind.Utc);

    /// <summary>A history written as one string per event type ("OrchestratorStarted", "TaskScheduled", ...), with timeline items placed on it.</summary>
    sealed class Script
    {
        public List<HistoryEventView> History { get; } = [];
        public List<TimelineItem> Items { get; } = [];

        public Script Episode() => Add("OrchestratorStarted");

        public Script Add(string type, string? name = null, EntityEventView? entity = null, Failure? failure = null)
        {
            History.Add(new HistoryEventView(History.Count, -1, type, T0.AddMilliseconds(History.Count), name, null, null, null, null, null, failure, entity));
            return this;
        }

        /// <summary>A step that starts here and ends <paramref name="endsAfter"/> events later (null: still open).</summary>
        public Script Step(string kind, string name, string status, int? endsAfter = null, string? instanceId = null, string? entityId = null)
        {
            int start = History.Count;
            Add(kind == "Timer" ? "TimerCreated" : "TaskScheduled", name);
            int? end = endsAfter is { } n ? start + n : null;
            Items.Add(new TimelineItem(kind, name, start, T0.AddMilliseconds(start), end is { } e ? T0.AddMilliseconds(e) : null, status, instanceId, start, end, entityId));
            return this;
        }

        public IReadOnlyList<FlowStage> Build()
        {
            // Ends that point past the history are completions recorded later.
            while (Items.Any(i => i.EndIndex >= History.Count)) Add("TaskCompleted");
            return FlowModel.Build(new Timeline(T0, null, Items), History);
        }
    }

    [Fact]
    public void Parallel_steps_of_one_name_are_one_box_with_their_counts()
    {
        var s = new Script().Episode();
        for (int i = 0; i < 1000; i++) s.Step("Activity", "City", i % 100 == 0 ? "Failed" : i < 990 ? "Completed" : "Running", i < 990 ? 2000 : null);
        s.Step("Activity", "Summary", "Running");
        var stage = Assert.Single(s.Build());
        Assert.Equal(2, stage.Steps.Count);
        var city = stage.Steps[0];
        Assert.Equal(("City", 1000, 980, 10, 10, "Running"), (city.Name, city.Count, city.Completed, city.Failed, city.Open, city.Status));
        Assert.Equal(10, city.Failures.Count);
        Assert.False(city.Sequential);
        Assert.Equal(1, stage.Steps[1].Count);
    }

    [Fact]
    public void A_fan_out_of_more_than_five_sub_orchestrations_is_one_box_with_every_child_in_order()
    {
        var s = new Script().Episode();
        for (int i = 0; i < 7; i++) s.Step("SubOrchestration", "Child", i == 3 ? "Failed" : "Completed", 20, instanceId: $"p-child-{i}");
        s.Step("Activity", "Say", "Completed", 20);
        var stage = Assert.Single(s.Build());
        Assert.Equal(2, stage.Steps.Count);
        var children = stage.Steps[0];
        Assert.Equal(("SubOrchestration", "Child", 7, 6, 1, 0, "Failed"), (children.Kind, children.Name, children.Count, children.Completed, children.Failed, children.Open, children.Status));
        Assert.Null(children.Target);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"p-child-{i}"), children.Instances);
        Assert.Equal("p-child-3", Assert.Single(children.Failures).InstanceId);
        Assert.Equal(("Say", 1), (stage.Steps[1].Name, stage.Steps[1].Count));
    }

    static OrchestrationDetail Detail(string status, DateTime createdAt) =>
        new("i", "Countdown", null, status, createdAt, createdAt, null, null, 0, null, "e", null, null, null, null, null);

    [Fact]
    public void An_execution_whose_start_is_later_than_its_instance_continued_from_an_earlier_one()
    {
        var s = new Script().Episode().Add("ExecutionStarted", "Countdown").Step("Activity", "Say", "Completed", 2);
        s.Build();
        var start = s.History[1];
        Assert.Equal(new FlowContinuation(false, start.Timestamp, 1, null), FlowModel.Continuation(Detail("Running", T0), s.History));
        Assert.Equal(new FlowContinuation(false, start.Timestamp, 1, null), FlowModel.Continuation(Detail("Completed", T0), s.History));

        // A first execution's start event has the instance's creation time.
        Assert.Null(FlowModel.Continuation(Detail("Running", start.Timestamp), s.History));
        Assert.Null(FlowModel.Continuation(Detail("Completed", start.Timestamp), s.History));
    }

    [Fact]
    public void A_running_instance_whose_history_has_no_start_yet_waits_for_the_execution_it_continued_as()
    {
        Assert.Equal(new FlowContinuation(true, null, -1, null), FlowModel.Continuation(Detail("Running", T0), []));
        // A new instance before its first episode is Pending; an unknown history tells nothing.
        Assert.Null(FlowModel.Continuation(Detail("Pending", T0), []));
        Assert.Null(FlowModel.Continuation(Detail("Running", T0), null));
    }

    [Fact]
    public void A_retried_step_is_one_box_with_its_attempts()
    {
        var s = new Script().Episode().Step("Activity", "Charge", "Failed", 2).Episode().Add("TaskFailed", failure: new Failure("E", "declined", null, false, null))
            .Step("Timer", "Timer", "Fired", 2).Episode().Add("TimerFired").Step("Activity", "Charge", "Completed", 2).Episode();
        var step = Assert.Single(Assert.Single(s.Build()).Steps);
        Assert.Equal(("Charge", 2, "Completed", 1), (step.Name, step.Attempts, step.Status, step.Count));
        Assert.Equal("declined", Assert.Single(step.Failures).Message);
    }

    [Fact]
    public void A_loop_of_one_step_folds_and_other_steps_do_not()
    {
        var s = new Script();
        for (int i = 0; i < 50; i++) s.Episode().Step("Activity", "Poll", "Completed", 2);
        s.Episode().Step("Activity", "Report", "Completed", 2);
        s.Episode().Step("Activity", "Poll", "Completed", 2);
        var stages = s.Build();
        Assert.Equal([("Poll", 50, true), ("Report", 1, false), ("Poll", 1, false)], stages.Select(x => (x.Steps[0].Name, x.Steps[0].Count, x.Steps[0].Sequential)));
    }

    [Fact]
    public void Entity_calls_group_by_entity_name_and_answers_are_not_steps_but_received_events_are()
    {
        var s = new Script().Episode()
            .Step("EntityCall", "Get", "Completed", 10, entityId: "@account@alice")
            .Step("EntityCall", "Get", "Completed", 10, entityId: "@account@bob")
            .Step("EntityCall", "Get", "Completed", 10, entityId: "@ledger@main")
            .Episode()
            .Add("EventRaised", "7f3c", new EntityEventView("Result", "7f3c"))
            .Add("EventRaised", "approve");
        var stages = s.Build();
        Assert.Equal(2, stages.Count);
        Assert.Equal([("Get", 2, (string?)null), ("Get", 1, "@ledger@main")], stages[0].Steps.Select(x => (x.Name, x.Count, x.Target)));
        var received = Assert.Single(stages[1].Steps);
        Assert.Equal(("EventReceived", "approve"), (received.Kind, received.Name));
    }
}
