namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Per-minute throughput counters for the last hour (started and finished orchestrations).</summary>
public sealed partial class TaskHub
{
    const int StatsMinutes = 60;
    readonly long[] _startedPerMinute = new long[StatsMinutes];
    readonly long[] _finishedPerMinute = new long[StatsMinutes];
    readonly long[] _statsMinute = new long[StatsMinutes];

    void CountStarted() => Count(_startedPerMinute);

    void CountFinished() => Count(_finishedPerMinute);

    void Count(long[] counters)
    {
        long minute = Now.Ticks / TimeSpan.TicksPerMinute;
        int slot = (int)(minute % StatsMinutes);
        if (_statsMinute[slot] != minute)
        {
            _statsMinute[slot] = minute;
            _startedPerMinute[slot] = 0;
            _finishedPerMinute[slot] = 0;
        }

        counters[slot]++;
    }

    /// <summary>Started and finished orchestrations per minute, oldest first, for the last <paramref name="minutes"/> minutes.</summary>
    public IReadOnlyList<ThroughputPoint> GetThroughput(int minutes = 15)
    {
        minutes = Math.Clamp(minutes, 1, StatsMinutes);
        var result = new List<ThroughputPoint>(minutes);
        lock (_gate)
        {
            long now = Now.Ticks / TimeSpan.TicksPerMinute;
            for (long m = now - minutes + 1; m <= now; m++)
            {
                int slot = (int)(m % StatsMinutes);
                bool valid = _statsMinute[slot] == m;
                result.Add(new ThroughputPoint(new DateTime(m * TimeSpan.TicksPerMinute, DateTimeKind.Utc),
                    valid ? _startedPerMinute[slot] : 0, valid ? _finishedPerMinute[slot] : 0));
            }
        }

        return result;
    }
}

public sealed record ThroughputPoint(DateTime Minute, long Started, long Finished);
