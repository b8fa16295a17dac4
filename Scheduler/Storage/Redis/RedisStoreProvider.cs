using StackExchange.Redis;

namespace DurableTask.Scheduler.Storage.Redis;

/// <summary>
/// Keeps every task hub in one Redis server (or cluster) shared through one multiplexed connection.
/// The connection is made in the background and remade by itself after an outage; while Redis cannot be reached
/// every call fails at once with <see cref="StoreUnavailableException"/> instead of queueing.
/// </summary>
public sealed class RedisStoreProvider : IStoreProvider, IHubLeases, IAsyncDisposable, IDisposable
{
    readonly Task<ConnectionMultiplexer> _connection;
    readonly ILogger _logger;
    int _persistenceChecked;

    public RedisStoreProvider(string connectionString, RedisStoreOptions options, ILoggerFactory? loggers = null)
    {
        options.Validate();
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new InvalidOperationException("Scheduler:Store 'redis' needs the connection string ConnectionStrings:store, e.g. 'localhost:6379'.");

        ConfigurationOptions config;
        try
        {
            config = ConfigurationOptions.Parse(connectionString);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"ConnectionStrings:store is not a valid Redis configuration string: {ex.Message}", ex);
        }

        // Start without Redis and keep reconnecting; fail calls fast while disconnected (the hub decides what to retry).
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        if (!Mentions(connectionString, "connectTimeout")) config.ConnectTimeout = 2000;
        if (!Mentions(connectionString, "asyncTimeout")) config.AsyncTimeout = 5000;
        if (!Mentions(connectionString, "syncTimeout")) config.SyncTimeout = 5000;
        config.ReconnectRetryPolicy ??= new ExponentialRetry(250, 2000);
        config.ClientName ??= "durabletask-scheduler";

        Options = options;
        Endpoint = string.Join(",", config.EndPoints.Select(e => e.ToString()));
        _logger = (ILogger?)loggers?.CreateLogger<RedisStore>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        _connection = ConnectionMultiplexer.ConnectAsync(config);
    }

    public string Name => "redis";

    public RedisStoreOptions Options { get; }

    /// <summary>The configured server endpoints, for messages.</summary>
    public string Endpoint { get; }

    internal ILogger Logger => _logger;

    /// <summary>The set of every hub that has committed something: <c>{prefix}:hubs</c>.</summary>
    internal RedisKey HubsKey => $"{Options.KeyPrefix}:hubs";

    public ITaskHubStore Open(string taskHub) => new RedisStore(this, taskHub.ToLowerInvariant());

    /// <summary>Hubs that have data in Redis (lower-case names), e.g. dynamic hubs to recover at start.</summary>
    public async Task<IReadOnlyList<string>> ListTaskHubsAsync(CancellationToken cancellationToken)
    {
        var db = await AvailableDatabaseAsync(cancellationToken);
        var members = await Guard(() => db.SetMembersAsync(HubsKey).WaitAsync(cancellationToken), "listing the task hubs");
        return members.Select(m => m.ToString()).Order(StringComparer.Ordinal).ToList();
    }

    internal async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        var connection = await _connection.WaitAsync(cancellationToken);
        if (Interlocked.Exchange(ref _persistenceChecked, 1) == 0) _ = CheckPersistenceAsync(connection);
        return connection.GetDatabase();
    }

    /// <summary>The connection, waiting at most <paramref name="timeout"/> for the first attempt; null when it is not made yet.</summary>
    internal async Task<ConnectionMultiplexer?> ConnectionAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await _connection.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Warns once when Redis keeps no append-only file: then acknowledged commits can be lost when Redis restarts.</summary>
    async Task CheckPersistenceAsync(ConnectionMultiplexer connection)
    {
        try
        {
            foreach (var server in connection.GetServers())
            {
                if (!server.IsConnected || server.IsReplica) continue;
                var info = await server.InfoAsync("persistence");
                string? aof = info.SelectMany(g => g).FirstOrDefault(p => p.Key == "aof_enabled").Value;
                if (aof == "0") RedisLogs.NoAppendOnlyFile(_logger, server.EndPoint.ToString() ?? Endpoint);
            }
        }
        catch (Exception)
        {
            // INFO may be disabled on managed Redis; the check is advisory.
        }
    }

    // Hub leases: P:{H}:lease holds "replica|fence|endpoints" with an expiry; P:{H}:epoch counts acquisitions and so
    // gives each its fencing token (the key keeps its stored name). Both carry the hub's hash tag, so they live in the
    // hub's cluster slot and a commit can be conditioned on the hub lease.
    static readonly LuaScript AcquireScript = LuaScript.Prepare("""
        local current = redis.call('GET', @lease)
        if current then
          local bar = string.find(current, '|', 1, true)
          if not bar or string.sub(current, 1, bar - 1) ~= @replica then return current end
        end
        if @take ~= '1' then return current end
        local fence = redis.call('INCR', @fenceCounter)
        local value = @replica .. '|' .. fence .. '|' .. @endpoints
        redis.call('SET', @lease, value, 'PX', @ms)
        return value
        """);

    static readonly LuaScript RenewScript = LuaScript.Prepare("""
        if redis.call('GET', @lease) == @value then
          redis.call('PEXPIRE', @lease, @ms)
          return 1
        end
        return 0
        """);

    static readonly LuaScript ReleaseScript = LuaScript.Prepare("""
        if redis.call('GET', @lease) == @value then
          redis.call('DEL', @lease)
          return 1
        end
        return 0
        """);

    internal RedisKey LeaseKey(string hub) => $"{Options.KeyPrefix}:{{{hub.ToLowerInvariant()}}}:lease";

    /// <summary>Numbers a hub's lease acquisitions: their fencing tokens (the key is named <c>:epoch</c>).</summary>
    RedisKey FenceCounterKey(string hub) => $"{Options.KeyPrefix}:{{{hub.ToLowerInvariant()}}}:epoch";

    RedisKey ReplicasKey => $"{Options.KeyPrefix}:replicas";

    public async Task<HubLease?> TryAcquireAsync(string hub, string replicaId, string endpoints, TimeSpan duration, bool take, CancellationToken cancellationToken)
    {
        var db = await AvailableDatabaseAsync(cancellationToken);
        var result = await Guard(() => db.ScriptEvaluateAsync(AcquireScript, new
        {
            lease = LeaseKey(hub),
            fenceCounter = FenceCounterKey(hub),
            replica = replicaId,
            endpoints,
            take = take ? "1" : "0",
            ms = (long)duration.TotalMilliseconds,
        }), $"taking the lease of task hub '{hub}'");
        return HubLease.Parse((string?)result);
    }

    public async Task<bool> RenewAsync(string hub, HubLease lease, TimeSpan duration, CancellationToken cancellationToken)
    {
        var db = await AvailableDatabaseAsync(cancellationToken);
        var result = await Guard(() => db.ScriptEvaluateAsync(RenewScript, new
        {
            lease = LeaseKey(hub),
            value = lease.Value,
            ms = (long)duration.TotalMilliseconds,
        }), $"renewing the lease of task hub '{hub}'");
        return (int)result == 1;
    }

    public async Task ReleaseAsync(string hub, HubLease lease, CancellationToken cancellationToken)
    {
        var db = await AvailableDatabaseAsync(cancellationToken);
        await Guard(() => db.ScriptEvaluateAsync(ReleaseScript, new { lease = LeaseKey(hub), value = lease.Value }),
            $"releasing the lease of task hub '{hub}'");
    }

    public async Task<int> HeartbeatAsync(string replicaId, TimeSpan window, CancellationToken cancellationToken)
    {
        var db = await AvailableDatabaseAsync(cancellationToken);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        return await Guard(async () =>
        {
            var add = db.SortedSetAddAsync(ReplicasKey, replicaId, now);
            var trim = db.SortedSetRemoveRangeByScoreAsync(ReplicasKey, double.NegativeInfinity, now - (long)window.TotalMilliseconds * 10);
            var alive = db.SortedSetLengthAsync(ReplicasKey, now - (long)window.TotalMilliseconds, double.PositiveInfinity);
            await Task.WhenAll(add, trim, alive);
            return (int)Math.Max(1, alive.Result);
        }, "recording this replica's heartbeat");
    }

    public ITaskHubStore OpenFenced(string hub, HubLease lease) => new RedisStore(this, hub.ToLowerInvariant(), lease.Value);

    /// <summary>The database, or <see cref="StoreUnavailableException"/> while Redis cannot be reached.</summary>
    async Task<IDatabase> AvailableDatabaseAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await DatabaseAsync(cancellationToken);
        }
        catch (Exception ex) when (RedisStore.IsUnavailable(ex))
        {
            throw new StoreUnavailableException($"Redis at {Endpoint} cannot be reached: {ex.Message}", ex);
        }
    }

    /// <summary>Runs a call, turning connection failures into <see cref="StoreUnavailableException"/> naming <paramref name="what"/>.</summary>
    async Task<T> Guard<T>(Func<Task<T>> call, string what)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (RedisStore.IsUnavailable(ex))
        {
            throw new StoreUnavailableException($"Redis at {Endpoint} cannot be reached ({what}): {ex.Message}", ex);
        }
    }

    static bool Mentions(string connectionString, string key) =>
        connectionString.Contains(key + "=", StringComparison.OrdinalIgnoreCase);

    public async ValueTask DisposeAsync()
    {
        try
        {
            var connection = await _connection;
            await connection.DisposeAsync();
        }
        catch (Exception)
        {
            // The connection was never made.
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

static partial class RedisLogs
{
    [LoggerMessage(201, LogLevel.Warning, "Redis at {Endpoint} runs without an append-only file (appendonly no): commits acknowledged since its last snapshot are lost if Redis stops. Set 'appendonly yes' for durability.")]
    public static partial void NoAppendOnlyFile(ILogger logger, string endpoint);

    [LoggerMessage(202, LogLevel.Information, "Loaded {Instances} instances ({Blocks} history blocks) and {Entities} entities of task hub '{Hub}' from Redis in {Milliseconds} ms.")]
    public static partial void Loaded(ILogger logger, string hub, int instances, int blocks, int entities, long milliseconds);

    [LoggerMessage(203, LogLevel.Warning, "Upgraded task hub '{Hub}' in Redis from layout version {From} to {To}.")]
    public static partial void Upgraded(ILogger logger, string hub, int from, int to);
}
