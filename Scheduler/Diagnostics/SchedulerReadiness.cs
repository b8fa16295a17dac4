namespace DurableTask.Scheduler.Diagnostics;

/// <summary>Flips to ready once the task hubs are loaded; <c>/healthz</c> reports it.</summary>
public sealed class SchedulerReadiness
{
    volatile bool _ready;
    public bool IsReady => _ready;
    internal void MarkReady() => _ready = true;
}
