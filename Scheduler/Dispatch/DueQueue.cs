using DurableTask.Scheduler.Diagnostics;

namespace DurableTask.Scheduler.Dispatch;

/// <summary>
/// Work that comes due at a time (durable timers, scheduled starts, redelivery delays, scheduled entity signals, the
/// grace period of a disconnected worker): one system timer, armed for the earliest entry. Not thread-safe: the owner
/// calls every member under its own lock, and its <c>onTimer</c> callback takes that lock and calls <see cref="RunDue"/>.
/// </summary>
public sealed class DueQueue
{
    static readonly TimeSpan MaxArmDelay = TimeSpan.FromHours(1);

    readonly TimeProvider _time;
    readonly ITimer _timer;
    readonly ILogger _logger;
    readonly string _owner;
    readonly PriorityQueue<Action, DateTime> _due = new();
    DateTime _armedFor = DateTime.MaxValue;
    bool _stopped;

    /// <param name="onTimer">Called on a timer thread when the earliest entry may be due.</param>
    public DueQueue(TimeProvider time, Action onTimer, ILogger logger, string owner)
    {
        _time = time;
        _logger = logger;
        _owner = owner;
        _timer = time.CreateTimer(static state => ((Action)state!)(), onTimer, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Runs <paramref name="action"/> (from <see cref="RunDue"/>) at or after <paramref name="dueAt"/>, never before.</summary>
    public void Add(DateTime dueAt, Action action)
    {
        _due.Enqueue(action, dueAt);
        if (dueAt < _armedFor) Arm(dueAt);
    }

    /// <summary>Runs every entry due by now, then arms the timer for the next one.</summary>
    public void RunDue()
    {
        _armedFor = DateTime.MaxValue;
        var now = _time.GetUtcNow().UtcDateTime;
        while (_due.TryPeek(out var action, out var dueAt) && dueAt <= now)
        {
            _due.Dequeue();
            try
            {
                action();
            }
            catch (Exception ex)
            {
                Logs.TimerFailed(_logger, _owner, ex);
            }
        }

        if (_due.TryPeek(out _, out var next)) Arm(next);
    }

    /// <summary>Nothing fires any more (entries stay, unrun).</summary>
    public void Stop()
    {
        _stopped = true;
        _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    void Arm(DateTime dueAt)
    {
        if (_stopped) return;
        _armedFor = dueAt;
        var delay = dueAt - _time.GetUtcNow().UtcDateTime;
        if (delay < TimeSpan.Zero) delay = TimeSpan.Zero;
        // Timers take at most ~49 days; a later due time is reached by re-arming on the way.
        if (delay > MaxArmDelay) delay = MaxArmDelay;
        // Timer resolution can fire a little early; RunDue re-arms until the due time has really passed.
        _timer.Change(delay + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }
}
