using DurableTask.Scheduler.Diagnostics;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>Durable timers, scheduled starts and redelivery delays: one timer per hub, armed for the earliest due entry.</summary>
public sealed partial class TaskHub
{
    readonly ITimer _timer;
    readonly PriorityQueue<Action, DateTime> _due = new();
    DateTime _armedFor = DateTime.MaxValue;
    static readonly TimeSpan MaxArmDelay = TimeSpan.FromHours(1);

    /// <summary>Runs <paramref name="action"/> under the hub lock at or after <paramref name="dueAt"/>, never before.</summary>
    void Schedule(DateTime dueAt, Action action)
    {
        _due.Enqueue(action, dueAt);
        if (dueAt < _armedFor) Arm(dueAt);
    }

    void Arm(DateTime dueAt)
    {
        if (_stopped) return;
        _armedFor = dueAt;
        var delay = dueAt - Now;
        if (delay < TimeSpan.Zero) delay = TimeSpan.Zero;
        // Timers take at most ~49 days; a later due time is reached by re-arming on the way.
        if (delay > MaxArmDelay) delay = MaxArmDelay;
        // Timer resolution can fire a little early; OnTimer re-arms until the due time has really passed.
        _timer.Change(delay + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }

    void OnTimer()
    {
        lock (_gate)
        {
            _armedFor = DateTime.MaxValue;
            var now = Now;
            while (_due.TryPeek(out var action, out var dueAt) && dueAt <= now)
            {
                _due.Dequeue();
                try
                {
                    action();
                }
                catch (Exception ex)
                {
                    Logs.TimerFailed(_logger, Name, ex);
                }
            }

            if (_due.TryPeek(out _, out var next)) Arm(next);
            Pump();
        }
    }
}
