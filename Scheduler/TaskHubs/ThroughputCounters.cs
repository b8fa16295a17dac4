namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Started and finished orchestrations per minute for the last hour, in a ring of minute slots. Not thread-safe: the
/// owning hub calls it under its lock.
/// </summary>
public sealed class ThroughputCounters
{
    const int Minutes = 60;
    readonly long[] _started = new long[Minutes];
    readonly long[] _finished = new long[Minutes];
    readonly long[] _minuteOfSlot = new long[Minutes];

    public void CountStarted(DateTime now) => Count(_started, now);

    public void CountFinished(DateTime now) => Count(_finished, now);

    void Count(long[] counters, DateTime now)
    {
        long minute = now.Ticks / TimeSpan.TicksPerMinute;
        int slot = (int)(minute % Minutes);
        if (_minuteOfSlot[slot] != minute)
        {
            _minuteOfSlot[slot] = minute;
            _started[slot] = 0;
            _finished[slot] = 0;
        }

        counters[slot]++;
    }

    /// <summary>Started and finished orchestrations per minute, oldest first, for the last <paramref name="minutes"/> minutes up to <paramref name="now"/>.</summary>
    public IReadOnlyList<ThroughputPoint> Read(int minutes, DateTime now)
    {
        minutes = Math.Clamp(minutes, 1, Minutes);
        var result = new List<ThroughputPoint>(minutes);
        long current = now.Ticks / TimeSpan.TicksPerMinute;
        for (long m = current - minutes + 1; m <= current; m++)
        {
            int slot = (int)(m % Minutes);
            bool valid = _minuteOfSlot[slot] == m;
            result.Add(new ThroughputPoint(new DateTime(m * TimeSpan.TicksPerMinute, DateTimeKind.Utc),
                valid ? _started[slot] : 0, valid ? _finished[slot] : 0));
        }

        return result;
    }
}

public sealed record ThroughputPoint(DateTime Minute, long Started, long Finished);
