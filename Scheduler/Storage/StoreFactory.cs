using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Storage.InMemory;
using DurableTask.Scheduler.Storage.Redis;
using DurableTask.Scheduler.Storage.Sqlite;

namespace DurableTask.Scheduler.Storage;

/// <summary>Chooses the store named by <c>Scheduler:Store</c>.</summary>
public static class StoreFactory
{
    public static readonly string[] Supported = ["memory", "sqlite", "redis"];

    public static IStoreProvider Create(SchedulerOptions options, IConfiguration configuration, IServiceProvider services) =>
        options.Store.ToLowerInvariant() switch
        {
            "memory" => new InMemoryStoreProvider(),
            "sqlite" => new SqliteStoreProvider(
                options.DataPath,
                configuration.GetSection(SqliteStoreOptions.Section).Get<SqliteStoreOptions>() ?? new SqliteStoreOptions(),
                services.GetService<ILoggerFactory>()),
            "redis" => new RedisStoreProvider(
                configuration.GetConnectionString(RedisStoreOptions.ConnectionStringName) ?? "",
                configuration.GetSection(RedisStoreOptions.Section).Get<RedisStoreOptions>() ?? new RedisStoreOptions(),
                services.GetService<ILoggerFactory>()),
            _ => throw new InvalidOperationException(
                $"Scheduler:Store '{options.Store}' is not supported. Supported stores: {string.Join(", ", Supported)}."),
        };
}
