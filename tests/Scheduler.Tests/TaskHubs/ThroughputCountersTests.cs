using DurableTask.Scheduler.TaskHubs;
using Xunit;

namespace DurableTask.Scheduler.Tests.TaskHubs;

/// <summary>The per-minute counters behind the dashboard's throughput chart.</summary>
public sealed class ThroughputCountersTests
{
    [Fact]
    public void Throughput_counts_land_in_their_minute_and_old_minutes_read_as_zero()
    {
        var counters = new ThroughputCounters();
        var t = new DateTime(2026, 12, 7, 12, 0, 30, DateTimeKind.Utc);
        counters.CountStarted(t);
        counters.CountStarted(t);
        counters.CountFinished(t.AddMinutes(1));
        var points = counters.Read(3, t.AddMinutes(1));
        Assert.Equal([(0L, 0L), (2L, 0L), (0L, 1L)], points.Select(p => (p.Started, p.Finished)));
        Assert.Equal(new DateTime(2026, 12, 7, 12, 1, 0, DateTimeKind.Utc), points[^1].Minute);
        // An hour later the same slots hold nothing of that time.
        Assert.All(counters.Read(60, t.AddMinutes(61)), p => Assert.Equal((0L, 0L), (p.Started, p.Finished)));
    }
}
