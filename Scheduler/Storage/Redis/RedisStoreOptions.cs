namespace DurableTask.Scheduler.Storage.Redis;

/// <summary>
/// Settings of the Redis store, bound from <c>Scheduler:Redis</c>; the server comes from <c>ConnectionStrings:store</c>
/// (a StackExchange.Redis configuration string such as <c>localhost:6379</c> or <c>host:6380,password=...,ssl=true</c>).
/// <code>
/// "ConnectionStrings": { "store": "localhost:6379" },
/// "Scheduler": { "Store": "redis", "Redis": { "KeyPrefix": "dts" } }
/// </code>
/// </summary>
public sealed class RedisStoreOptions
{
    public const string Section = "Scheduler:Redis";
    public const string ConnectionStringName = "store";

    /// <summary>First part of every key, so several schedulers can share one Redis database.</summary>
    public string KeyPrefix { get; set; } = "dts";

    /// <summary>How long a health probe (PING) may take before the store is reported unhealthy.</summary>
    public TimeSpan HealthProbeTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Instances read per round of pipelined commands while loading a hub.</summary>
    public int LoadPageSize { get; set; } = 1000;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(KeyPrefix) || KeyPrefix.Contains('{') || KeyPrefix.Contains('}'))
            throw new InvalidOperationException("Scheduler:Redis:KeyPrefix must be non-empty and must not contain '{' or '}'.");
        if (LoadPageSize <= 0)
            throw new InvalidOperationException("Scheduler:Redis:LoadPageSize must be positive.");
        if (HealthProbeTimeout <= TimeSpan.Zero)
            throw new InvalidOperationException("Scheduler:Redis:HealthProbeTimeout must be positive.");
    }
}
