using DurableTask.Scheduler.Hosting;

namespace DurableTask.Scheduler.TaskHubs;

public sealed partial class TaskHub(string name, SchedulerOptions options, TimeProvider time, ILogger<TaskHub> logger)
{
    public string Name { get; } = name;
    public void Stop() { _ = options; _ = time; _ = logger; }
}
