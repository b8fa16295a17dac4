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

        var picked = Enumerable.Range(0, 4).Select(i => _pool.Pick(WorkKind.Orchestration, "Flow", out _)!.Id).ToList();
        Assert.Equal(["a", "c", "a", "c"], picked);
        // A name its filters accept reaches it in its turn, as for the workers without filters.
        var named = Enumerable.Range(0, 3).Select(i => _pool.Pick(WorkKind.Orchestration, "OnlyThis", out _)!.Id).ToList();
        Assert.Equal(["a", "b", "c"], named.Order());
    }

    [Fact]
    public void A_worker_at_its_limit_gets_nothing_more_until_work_ends()
    {
        var only = Worker("only", activities: 1);
        _pool.Add(only);
        var work = Activity(_pool.NewToken('a'), only);
        _pool.Hand(work);

        Assert.Null(_pool.Pick(WorkKind.Activity, "Act", out bool anyCapacity));
        Assert.False(anyCapacity);
        Assert.Same(only, _pool.Pick(WorkKind.Orchestration, "Flow", out _));
        Assert.Equal((1, 1), (only.InFlightActivities, _pool.InFlightCount));
        Assert.True(_pool.TryGet(work.Token, out var found));
        Assert.Same(work, found);

        _pool.End(work);
        Assert.False(_pool.IsInFlight(work));
        Assert.Equal((0, 0, 0), (only.InFlightActivities, only.InFlight.Count, _pool.InFlightCount));
        Assert.Same(only, _pool.Pick(WorkKind.Activity, "Act", out _));
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
