using DurableTask.Scheduler.Dispatch;
using Microsoft.DurableTask.Protobuf;
using Xunit;

namespace DurableTask.Scheduler.Tests.Dispatch;

/// <summary>Which connected worker takes a work item, and the bookkeeping of work in flight, without a server.</summary>
public sealed class WorkerPoolTests
{
    readonly WorkerPool _pool = new();

    static WorkerConnection Worker(string id, int activities = 10, params string[] orchestrationNames)
    {
        var request = new GetWorkItemsRequest { MaxConcurrentOrchestrationWorkItems = 10, MaxConcurrentActivityWorkItems = activities };
        if (orchestrationNames.Length > 0)
        {
            request.WorkItemFilters = new WorkItemFilters();
            foreach (var name in orchestrationNames) request.WorkItemFilters.Orchestrations.Add(new OrchestrationFilter { Name = name });
        }

        return new WorkerConnection(id, "hub", request, defaultConcurrency: 10);
    }

    static InFlightActivity Activity(string token, WorkerConnection worker) => new()
    {
        Token = token,
        Worker = worker,
        Task = new ActivityTask { InstanceId = "i", ExecutionId = "e", TaskId = 0, Name = "Act", Request = [] },
    };

    [Fact]
    public void Workers_take_turns_and_one_whose_filters_refuse_the_name_is_passed_over()
    {
        var a = Worker("a");
        var b = Worker("b", 10, "OnlyThis");
        var c = Worker("c");
        _pool.Add(a);
        _pool.Add(b);
        _pool.Add(c);

        var picked = Enumerable.Range(0, 4).Select(i => _pool.Pick(WorkKind.Orchestration, "Flow", null, out _)!.Id).ToList();
        Assert.Equal(["a", "c", "a", "c"], picked);
        // A name its filters accept reaches it in its turn, as for the workers without filters.
        var named = Enumerable.Range(0, 3).Select(i => _pool.Pick(WorkKind.Orchestration, "OnlyThis", null, out _)!.Id).ToList();
        Assert.Equal(["a", "b", "c"], named.Order());
    }

    [Fact]
    public void A_worker_at_its_limit_gets_nothing_more_until_work_ends()
    {
        var only = Worker("only", activities: 1);
        _pool.Add(only);
        var work = Activity(_pool.NewToken('a'), only);
        _pool.Hand(work);

        Assert.Null(_pool.Pick(WorkKind.Activity, "Act", null, out bool anyCapacity));
        Assert.False(anyCapacity);
        Assert.Same(only, _pool.Pick(WorkKind.Orchestration, "Flow", null, out _));
        Assert.Equal((1, 1), (only.InFlightActivities, _pool.InFlightCount));
        Assert.True(_pool.TryGet(work.Token, out var found));
        Assert.Same(work, found);

        _pool.End(work);
        Assert.False(_pool.IsInFlight(work));
        Assert.Equal((0, 0, 0), (only.InFlightActivities, only.InFlight.Count, _pool.InFlightCount));
        Assert.Same(only, _pool.Pick(WorkKind.Activity, "Act", null, out _));
    }

    static WorkerConnection Versioned(string id, WorkItemFilters filters) =>
        new(id, "hub", new GetWorkItemsRequest { WorkItemFilters = filters }, defaultConcurrency: 10);

    static OrchestrationFilter Orchestration(string name, params string[] versions) => new() { Name = name, Versions = { versions } };

    static ActivityFilter ActivityOf(string name, params string[] versions) => new() { Name = name, Versions = { versions } };

    [Fact]
    public void Work_goes_only_to_a_worker_whose_filters_accept_its_version()
    {
        var v1 = Versioned("v1", new WorkItemFilters { Orchestrations = { Orchestration("Flow", "1.0") }, Activities = { ActivityOf("Act", "1.0") } });
        var v2 = Versioned("v2", new WorkItemFilters { Orchestrations = { Orchestration("Flow", "2.0") }, Activities = { ActivityOf("Act", "2.0") } });
        _pool.Add(v1);
        _pool.Add(v2);

        for (int i = 0; i < 4; i++)
        {
            Assert.Same(v1, _pool.Pick(WorkKind.Orchestration, "Flow", "1.0", out _));
            Assert.Same(v2, _pool.Pick(WorkKind.Orchestration, "Flow", "2.0", out _));
            Assert.Same(v1, _pool.Pick(WorkKind.Activity, "Act", "1.0", out _));
            Assert.Same(v2, _pool.Pick(WorkKind.Activity, "Act", "2.0", out _));
        }

        // A version no worker accepts, or no version at all, waits: both workers have room, so the caller goes on with other work.
        Assert.Null(_pool.Pick(WorkKind.Orchestration, "Flow", "3.0", out bool anyCapacity));
        Assert.True(anyCapacity);
        Assert.Null(_pool.Pick(WorkKind.Orchestration, "Flow", null, out _));
        Assert.Null(_pool.Pick(WorkKind.Activity, "Act", "", out _));
        Assert.Equal((1, 0), (_pool.CountAccepting(WorkKind.Orchestration, "Flow", "2.0"), _pool.CountAccepting(WorkKind.Orchestration, "Flow", "3.0")));
    }

    [Fact]
    public void An_empty_version_list_accepts_every_version_and_names_and_versions_ignore_case()
    {
        var any = Versioned("any", new WorkItemFilters { Orchestrations = { Orchestration("Flow") } });
        var beta = Versioned("beta", new WorkItemFilters { Orchestrations = { Orchestration("Other", "1.0-Beta", "") } });
        _pool.Add(any);
        _pool.Add(beta);

        Assert.Same(any, _pool.Pick(WorkKind.Orchestration, "flow", "7.3", out _));
        Assert.Same(any, _pool.Pick(WorkKind.Orchestration, "FLOW", null, out _));
        Assert.Same(beta, _pool.Pick(WorkKind.Orchestration, "other", "1.0-beta", out _));
        // An empty or blank version is no version, which the filter's "" accepts.
        Assert.Same(beta, _pool.Pick(WorkKind.Orchestration, "Other", null, out _));
        Assert.Same(beta, _pool.Pick(WorkKind.Orchestration, "Other", " ", out _));
        Assert.Null(_pool.Pick(WorkKind.Orchestration, "Other", "1.0", out _));
        // Given filters, a type without entries gets nothing.
        Assert.Null(_pool.Pick(WorkKind.Activity, "Act", null, out _));
        Assert.Null(_pool.Pick(WorkKind.Entity, "counter", null, out _));
    }

    [Fact]
    public void A_name_listed_twice_accepts_the_versions_of_both_entries_and_any_when_one_has_none()
    {
        var filter = new WorkFilter();
        filter.Add("Flow", ["1.0"]);
        filter.Add("flow", ["2.0"]);
        Assert.True(filter.Accepts("Flow", "1.0"));
        Assert.True(filter.Accepts("Flow", "2.0"));
        Assert.False(filter.Accepts("Flow", "3.0"));
        var entry = Assert.Single(filter.Entries());
        Assert.Equal("Flow", entry.Name);
        Assert.Equal(["1.0", "2.0"], entry.Versions);

        filter.Add("FLOW", []);
        filter.Add("Flow", ["4.0"]);
        Assert.True(filter.Accepts("Flow", "3.0"));
        Assert.Empty(Assert.Single(filter.Entries()).Versions);
    }

    [Fact]
    public void Tokens_are_unique_and_differ_between_pools()
    {
        var other = new WorkerPool();
        var mine = Enumerable.Range(0, 100).Select(_ => _pool.NewToken('a')).ToList();
        Assert.Equal(100, mine.Distinct().Count());
        Assert.All(mine, t => Assert.StartsWith("a", t));
        // A second pool is a later run of the scheduler: its first tokens never match the first run's.
        Assert.DoesNotContain(other.NewToken('a'), mine);
    }
}
