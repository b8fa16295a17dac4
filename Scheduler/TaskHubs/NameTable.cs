namespace DurableTask.Scheduler.TaskHubs;

/// <summary>
/// Orchestration names repeat across a hub's instances: they share one string each, up to a bound, so a hub of many
/// instances of a few orchestrations does not hold a copy of the name per instance. Not thread-safe.
/// </summary>
public sealed class NameTable
{
    const int MaxNames = 10_000;
    readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);

    public string Intern(string name)
    {
        if (_names.TryGetValue(name, out var shared)) return shared;
        if (_names.Count < MaxNames) _names[name] = name;
        return name;
    }
}
