using DurableTask.Scheduler.Dispatch;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableTask.Scheduler.Tests.Dispatch;

/// <summary>The hub's one timer for due work, on a fake clock.</summary>
public sealed class DueQueueTests
{
    readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));
    readonly List<string> _ran = new();
    readonly Lock _gate = new();
    readonly DueQueue _queue;

    public DueQueueTests() => _queue = new DueQueue(_time, () => { lock (_gate) _queue!.RunDue(); }, NullLogger.Instance, "hub");

    DateTime Now => _time.GetUtcNow().UtcDateTime;

    void Add(TimeSpan after, string name)
    {
        lock (_gate) _queue.Add(Now + after, () => _ran.Add(name));
    }

    [Fact]
    public void Entries_run_in_due_order_and_never_before_their_time()
    {
        Add(TimeSpan.FromSeconds(30), "b");
        Add(TimeSpan.FromSeconds(10), "a");
        Add(TimeSpan.FromMinutes(5), "c");

        _time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Empty(_ran);
        _time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal(["a"], _ran);
        _time.Advance(TimeSpan.FromSeconds(25));
        Assert.Equal(["a", "b"], _ran);
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(["a", "b", "c"], _ran);
    }

    [Fact]
    public void A_due_time_already_past_runs_at_once_and_a_far_one_is_reached_by_rearming()
    {
        Add(TimeSpan.FromHours(-1), "late");   // a timer that came due while the scheduler was down
        Add(TimeSpan.FromDays(60), "far");     // beyond what one system timer takes
        _time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(["late"], _ran);
        for (int hour = 0; hour < 24 * 60 - 1; hour++) _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(["late"], _ran);
        _time.Advance(TimeSpan.FromHours(1.1));
        Assert.Equal(["late", "far"], _ran);
    }

    [Fact]
    public void A_failing_entry_does_not_stop_the_ones_after_it_and_a_stopped_queue_runs_nothing()
    {
        lock (_gate) _queue.Add(Now.AddSeconds(1), () => throw new InvalidOperationException("bug"));
        Add(TimeSpan.FromSeconds(1), "after");
        Add(TimeSpan.FromSeconds(5), "stopped");
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(["after"], _ran);
        lock (_gate) _queue.Stop();
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(["after"], _ran);
    }
}
