using System.Collections.Concurrent;
using DurableTask.Scheduler.Hosting;
using Grpc.Core;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>The task hubs this scheduler serves. Each call names its hub in the <c>taskhub</c> header.</summary>
public sealed class TaskHubRegistry(SchedulerOptions options, TimeProvider time, ILoggerFactory loggers)
{
    public const string DefaultHubName = "default";
    readonly ConcurrentDictionary<string, TaskHub> _hubs = new(StringComparer.OrdinalIgnoreCase);
    readonly object _createGate = new();

    public IEnumerable<TaskHub> Hubs => _hubs.Values;

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        foreach (var name in options.TaskHubNames)
        {
            GetOrCreate(name);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync()
    {
        foreach (var hub in _hubs.Values)
        {
            hub.Stop();
        }

        return Task.CompletedTask;
    }

    /// <summary>Finds the hub a call addresses, or fails it with NotFound (InvalidArgument for a malformed name).</summary>
    public TaskHub Resolve(ServerCallContext context)
    {
        string name = DefaultHubName;
        foreach (var entry in context.RequestHeaders)
        {
            if (string.Equals(entry.Key, "taskhub", StringComparison.OrdinalIgnoreCase) && !entry.IsBinary)
            {
                name = entry.Value;
                break;
            }
        }

        return Resolve(name);
    }

    public TaskHub Resolve(string name)
    {
        if (_hubs.TryGetValue(name, out var hub)) return hub;
        if (!IsValidName(name))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"task hub name '{Truncate(name)}' is invalid: use 1-64 letters, digits, '-' or '_'"));
        if (options.UseDynamicTaskHubs) return GetOrCreate(name);
        throw new RpcException(new Status(StatusCode.NotFound, $"task hub '{name}' not found"));
    }

    public TaskHub? Find(string name) => _hubs.TryGetValue(name, out var hub) ? hub : null;

    TaskHub GetOrCreate(string name)
    {
        lock (_createGate)
        {
            if (_hubs.TryGetValue(name, out var existing)) return existing;
            var hub = new TaskHub(name, options, time, loggers.CreateLogger<TaskHub>());
            _hubs[name] = hub;
            return hub;
        }
    }

    static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
