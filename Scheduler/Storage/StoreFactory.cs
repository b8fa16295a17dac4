using DurableTask.Scheduler.Hosting;
using DurableTask.Scheduler.Storage.InMemory;

namespace DurableTask.Scheduler.Storage;

/// <summary>Chooses the store named by <c>Scheduler:Store</c>.</summary>
public static class StoreFactory
{
    public static readonly string[] Supported = ["memory"];

    public static IStoreProvider Create(SchedulerOptions options, IConfiguration configuration, IServiceProvider services) =>
        options.Store.ToLowerInvariant() switch
        {
            "memory" => new InMemoryStoreProvider(),
            _ => throw new InvalidOperationException(
                $"Scheduler:Store '{options.Store}' is not supported. Supported stores: {string.Join(", ", Supported)}."),
        };
}
