using System.Collections.Concurrent;
using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Domain;
using DurableTask.Scheduler.Storage;

namespace DurableTask.Scheduler.TaskHubs;

/// <summary>The task hubs this scheduler serves. Each call names its hub in the <c>taskhub</c> header.</summary>
public sealed class TaskHubRegistry(SchedulerOptions options, TimeProvider time, ILoggerFactory loggers, IStoreProvider stores)
{
    public const string DefaultHubName = "default";
    readonly ILogger logger = loggers.CreateLogger<TaskHubRegistry>();
    readonly ConcurrentDictionary<string, TaskHub> _hubs = new(StringComparer.OrdinalIgnoreCase);
    readonly ConcurrentDictionary<string, Lazy<Task<TaskHub>>> _opening = new(StringComparer.OrdinalIgnoreCase);

    public IEnumerable<TaskHub> Hubs => _hubs.Values;

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>
    /// Opens the configured hubs (and, with dynamic hubs, every hub the store holds state for), loading their state.
    /// A store that cannot be reached yet is retried until it answers; the scheduler is not ready until then.
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        // With leases, hubs open as their leases are taken (HubOwnership).
        if (Leased) return;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                var names = new List<string>(options.TaskHubNames);
                if (options.UseDynamicTaskHubs)
                {
                    foreach (var stored in await stores.ListTaskHubsAsync(cancellationToken))
                    {
                        if (IsValidName(stored) && !names.Contains(stored, StringComparer.OrdinalIgnoreCase)) names.Add(stored);
                    }
                }

                foreach (var name in names)
                {
                    if (!_hubs.ContainsKey(name)) await GetOrCreateAsync(name);
                }

                return;
            }
            catch (StoreUnavailableException ex)
            {
                Logs.StoreUnavailableAtStart(logger, stores.Name, delay, ex);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    public async Task StopAsync()
    {
        foreach (var hub in _hubs.Values) hub.Stop();
        foreach (var hub in _hubs.Values) await hub.CloseAsync();
    }

    /// <summary>True when every hub's store takes commits.</summary>
    public bool StoresHealthy => _hubs.Values.All(h => h.StoreHealthy);

    /// <summary>The task hub named by the <c>taskhub</c> header among <paramref name="headers"/>; <c>default</c> without one.</summary>
    public static string HubName(IHeaderDictionary headers) =>
        headers.TryGetValue("taskhub", out var values) && values.Count > 0 ? values[0] ?? "" : DefaultHubName;

    public ValueTask<TaskHub> ResolveAsync(string name)
    {
        if (_hubs.TryGetValue(name, out var hub)) return ValueTask.FromResult(hub);
        if (!IsValidName(name))
            throw TaskHubException.Invalid($"task hub name '{Truncate(name)}' is invalid: use 1-64 letters, digits, '-' or '_'");
        if (Leased)
        {
            // Replicas: a hub opens here only when this replica takes its lease; calls for hubs owned elsewhere are
            // forwarded before they get here.
            if (_opening.TryGetValue(name, out var opening)) return new ValueTask<TaskHub>(opening.Value);
            if (!Serves(name)) throw HubNotFound(name);
            throw new TaskHubException(TaskHubErrorKind.Moved,
                $"task hub '{name}' is not served by this scheduler replica right now (it is moving between replicas); retry");
        }
        if (options.UseDynamicTaskHubs)
        {
            if (_hubs.Count >= options.TaskHubNames.Count + options.MaxDynamicTaskHubs)
            {
                throw new TaskHubException(TaskHubErrorKind.LimitReached,
                    $"task hub '{Truncate(name)}' cannot be created: this scheduler already serves {_hubs.Count} task hubs (Scheduler:MaxDynamicTaskHubs is {options.MaxDynamicTaskHubs})");
            }

            return new ValueTask<TaskHub>(GetOrCreateAsync(name));
        }
        throw HubNotFound(name);
    }

    static TaskHubException HubNotFound(string name) => new(TaskHubErrorKind.NotFound, $"task hub '{name}' not found");

    public TaskHub? Find(string name) => _hubs.TryGetValue(name, out var hub) ? hub : null;

    async Task<TaskHub> OpenAsync(string name, ITaskHubStore store, CancellationToken cancellationToken)
    {
        var hub = new TaskHub(name, options, time, loggers.CreateLogger<TaskHub>()) { Fenced = h => HubFenced?.Invoke(h.Name) };
        await hub.OpenAsync(store, cancellationToken);
        _hubs[name] = hub;
        return hub;
    }

    /// <summary>True when hubs are owned through leases (replicas sharing one store): they open as leases are taken.</summary>
    public bool Leased => stores is IHubLeases;

    /// <summary>True when calls for <paramref name="name"/> can be served: a configured hub, or any valid name with dynamic hubs.</summary>
    public bool Serves(string name) =>
        IsValidName(name) && (options.UseDynamicTaskHubs || options.TaskHubNames.Contains(name, StringComparer.OrdinalIgnoreCase));

    /// <summary>Raised when a hub stops because its lease is gone (a fenced commit).</summary>
    public event Action<string>? HubFenced;

    /// <summary>Opens a hub whose lease this replica just took; its commits are conditioned on the lease.</summary>
    public async Task<TaskHub> OpenLeasedAsync(string name, HubLease lease, CancellationToken cancellationToken)
    {
        var opening = new Lazy<Task<TaskHub>>(() => OpenAsync(name, ((IHubLeases)stores).OpenFenced(name, lease), cancellationToken));
        _opening[name] = opening;
        try
        {
            return await opening.Value;
        }
        catch
        {
            _opening.TryRemove(new KeyValuePair<string, Lazy<Task<TaskHub>>>(name, opening));
            throw;
        }
    }

    /// <summary>Completes once a hub this replica is opening (its lease just taken) is loaded; at once otherwise.</summary>
    public async ValueTask WhenOpenAsync(string name)
    {
        if (_hubs.ContainsKey(name) || !_opening.TryGetValue(name, out var opening)) return;
        try
        {
            await opening.Value;
        }
        catch (Exception)
        {
            // The call finds the hub missing and answers as it would for any hub this replica does not serve.
        }
    }

    /// <summary>
    /// Removes a hub from this replica. With <paramref name="fenceReason"/> it stops at once without committing (its
    /// lease is gone); without, it commits what is pending first (the lease is given up afterwards).
    /// </summary>
    public async Task DropAsync(string name, string? fenceReason)
    {
        _opening.TryRemove(name, out var opening);
        TaskHub? hub = _hubs.TryRemove(name, out var open) ? open : null;
        if (hub is null && opening is not null)
        {
            try
            {
                hub = await opening.Value;
                _hubs.TryRemove(name, out _);
            }
            catch (Exception)
            {
                return;
            }
        }

        if (hub is null) return;
        if (fenceReason is not null) hub.Fence(fenceReason);
        else hub.Stop();
        await hub.CloseAsync();
    }

    /// <summary>Creates a hub on first use (dynamic task hubs); it loads whatever its store already holds.</summary>
    /// <remarks>Concurrent first calls share one opening, so they all see the same hub.</remarks>
    Task<TaskHub> GetOrCreateAsync(string name)
    {
        var opening = _opening.GetOrAdd(name, n => new Lazy<Task<TaskHub>>(() => OpenAsync(n, stores.Open(n), CancellationToken.None)));
        var task = opening.Value;
        if (!task.IsFaulted) return task;
        // An earlier attempt failed (store unavailable): the next call tries again rather than failing forever.
        _opening.TryRemove(new KeyValuePair<string, Lazy<Task<TaskHub>>>(name, opening));
        return task;
    }

    static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "...";
}
