using System.Diagnostics;
using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;
using StackExchange.Redis;

namespace DurableTask.Scheduler.Storage.Redis;

/// <summary>
/// One task hub in Redis. Every key carries the hash tag <c>{hub}</c>, so a hub lives in one cluster slot and a
/// batch is one MULTI/EXEC transaction even on Redis Cluster.
/// </summary>
/// <remarks>
/// Layout (version 1), with <c>P</c> = key prefix and <c>H</c> = hub name in lower case:
/// <list type="bullet">
/// <item><c>P:{H}:meta</c> hash: <c>layout</c> = layout version.</item>
/// <item><c>P:{H}:commit</c> string: token of the last batch (makes the retry of a batch whose answer was lost safe).</item>
/// <item><c>P:{H}:instances</c> sorted set: instance ids, scored by creation time (milliseconds since 0001-01-01 UTC).</item>
/// <item><c>P:{H}:i:ID</c> hash: <c>record</c> (InstanceRecord bytes) and the query fields <c>status</c>, <c>name</c>,
/// <c>created</c>, <c>updated</c>, <c>completed</c>, <c>parent</c> (UTC ticks; empty when absent) and <c>generation</c>.</item>
/// <item><c>P:{H}:h:ID</c> list: HistoryBlock bytes in commit order.</item>
/// <item><c>P:{H}:entities</c> set: entity ids; <c>P:{H}:e:ID</c> string: EntityRecord bytes.</item>
/// </list>
/// A failed commit may be retried with the same <see cref="CommitBatch"/> object: if an earlier attempt was applied after
/// all (its answer was lost with the connection), the retry applies nothing and succeeds.
/// Durability is Redis's: with <c>appendonly yes</c> an acknowledged batch survives a kill of Redis (the AOF is written
/// before Redis answers); <c>appendfsync always</c> is needed for it to survive a power loss.
/// </remarks>
public sealed class RedisStore : ITaskHubStore
{
    public const int LayoutVersion = 1;

    static readonly RedisValue RecordField = "record";
    static readonly RedisValue GenerationField = "generation";
    static readonly RedisValue LayoutField = "layout";

    readonly RedisStoreProvider _provider;
    readonly string _keyBase;
    bool _registered;

    // A batch whose EXEC was sent but whose answer was lost, and the token it wrote to the commit key.
    readonly object _uncertainGate = new();
    CommitBatch? _uncertainBatch;
    string? _uncertainToken;

    internal RedisStore(RedisStoreProvider provider, string hub)
    {
        _provider = provider;
        Hub = hub;
        _keyBase = $"{provider.Options.KeyPrefix}:{{{hub}}}:";
        MetaKey = _keyBase + "meta";
        CommitKey = _keyBase + "commit";
        IndexKey = _keyBase + "instances";
        EntityIndexKey = _keyBase + "entities";
    }

    public string Hub { get; }

    public bool IsDurable => true;

    internal RedisKey MetaKey { get; }
    internal RedisKey CommitKey { get; }
    internal RedisKey IndexKey { get; }
    internal RedisKey EntityIndexKey { get; }
    internal RedisKey InstanceKey(string id) => _keyBase + "i:" + id;
    internal RedisKey HistoryKey(string id) => _keyBase + "h:" + id;
    internal RedisKey EntityKey(string id) => _keyBase + "e:" + id;

    public async Task<StoredHub> LoadAsync(CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken);
        var stopwatch = Stopwatch.StartNew();
        var hub = new StoredHub();
        int blocks = 0;
        try
        {
            var layout = await db.HashGetAsync(MetaKey, LayoutField);
            if (layout.HasValue && (!layout.TryParse(out int version) || version > LayoutVersion))
            {
                throw new StoreCorruptedException(
                    $"Redis key '{MetaKey}' says layout version {layout}, but this scheduler knows versions up to {LayoutVersion}: " +
                    "the task hub was written by a newer scheduler. Run that version, or use another Scheduler:Redis:KeyPrefix.");
            }

            int page = _provider.Options.LoadPageSize;
            for (long start = 0; ; start += page)
            {
                var ids = await db.SortedSetRangeByRankAsync(IndexKey, start, start + page - 1);
                if (ids.Length == 0) break;
                var records = new Task<RedisValue>[ids.Length];
                var histories = new Task<RedisValue[]>[ids.Length];
                for (int i = 0; i < ids.Length; i++)
                {
                    string id = ids[i]!;
                    records[i] = db.HashGetAsync(InstanceKey(id), RecordField);
                    histories[i] = db.ListRangeAsync(HistoryKey(id));
                }

                await Task.WhenAll(Task.WhenAll(records), Task.WhenAll(histories));
                for (int i = 0; i < ids.Length; i++)
                {
                    string id = ids[i]!;
                    var bytes = records[i].Result;
                    if (bytes.IsNull)
                        throw Corrupted($"instance '{id}' is listed in '{IndexKey}' but '{InstanceKey(id)}' has no record");
                    var record = Parse(InstanceRecord.Parser, bytes, $"the record of instance '{id}' in '{InstanceKey(id)}'");
                    if (record.InstanceId != id)
                        throw Corrupted($"'{InstanceKey(id)}' holds the record of instance '{record.InstanceId}'");
                    var instance = new StoredInstance { Record = record };
                    foreach (var blockBytes in histories[i].Result)
                    {
                        var block = Parse(HistoryBlock.Parser, blockBytes, $"a history block of instance '{id}' in '{HistoryKey(id)}'");
                        if (block.Generation != record.HistoryGeneration) continue;
                        instance.History.Add(block);
                        blocks++;
                    }

                    hub.Instances.Add(instance);
                }

                if (ids.Length < page) break;
            }

            var entityIds = new List<string>();
            await foreach (var member in db.SetScanAsync(EntityIndexKey, pageSize: page).WithCancellation(cancellationToken))
            {
                entityIds.Add(member!);
            }

            foreach (var chunk in entityIds.Chunk(page))
            {
                var entities = chunk.Select(id => db.StringGetAsync(EntityKey(id))).ToArray();
                await Task.WhenAll(entities);
                for (int i = 0; i < chunk.Length; i++)
                {
                    var bytes = entities[i].Result;
                    if (bytes.IsNull)
                        throw Corrupted($"entity '{chunk[i]}' is listed in '{EntityIndexKey}' but '{EntityKey(chunk[i])}' does not exist");
                    var record = Parse(EntityRecord.Parser, bytes, $"the record of entity '{chunk[i]}' in '{EntityKey(chunk[i])}'");
                    if (record.InstanceId != chunk[i])
                        throw Corrupted($"'{EntityKey(chunk[i])}' holds the record of entity '{record.InstanceId}'");
                    hub.Entities.Add(record);
                }
            }
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable("reading the task hub", ex);
        }
        catch (RedisServerException ex)
        {
            throw Corrupted($"reading failed ({ex.Message})", ex);
        }

        RedisLogs.Loaded(_provider.Logger, Hub, hub.Instances.Count, blocks, hub.Entities.Count, stopwatch.ElapsedMilliseconds);
        return hub;
    }

    public async Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.IsEmpty) return;
        var db = await DatabaseAsync(cancellationToken);

        // Each batch writes a token of its own to the commit key. When the answer to an EXEC is lost, the batch may
        // or may not have been applied; a retry of the same batch then runs only if the key does not hold its token,
        // so a retried batch never appends its history twice.
        bool retry;
        string token;
        lock (_uncertainGate)
        {
            retry = ReferenceEquals(batch, _uncertainBatch);
            token = retry ? _uncertainToken! : Guid.NewGuid().ToString("N");
        }

        var transaction = db.CreateTransaction();
        if (retry) transaction.AddCondition(Condition.StringNotEqual(CommitKey, token));
        var queued = new List<Task>(batch.Instances.Count * 3 + batch.DeletedInstances.Count * 2 + batch.Entities.Count * 2 + batch.DeletedEntities.Count * 2 + 2);
        if (!_registered) queued.Add(transaction.HashSetAsync(MetaKey, LayoutField, LayoutVersion));
        queued.Add(transaction.StringSetAsync(CommitKey, token));

        foreach (var change in batch.Instances)
        {
            var record = change.Record;
            string id = record.InstanceId;
            if (change.ReplaceHistory) queued.Add(transaction.KeyDeleteAsync(HistoryKey(id)));
            queued.Add(transaction.HashSetAsync(InstanceKey(id),
            [
                new HashEntry(RecordField, record.ToByteArray()),
                new HashEntry("status", record.Status),
                new HashEntry("name", record.Name),
                new HashEntry("created", record.CreatedAt),
                new HashEntry("updated", record.LastUpdatedAt),
                new HashEntry("completed", record.HasCompletedAt ? record.CompletedAt : RedisValue.EmptyString),
                new HashEntry("parent", record.HasParentInstanceId ? record.ParentInstanceId : RedisValue.EmptyString),
                new HashEntry(GenerationField, record.HistoryGeneration),
            ]));
            queued.Add(transaction.SortedSetAddAsync(IndexKey, id, record.CreatedAt / TimeSpan.TicksPerMillisecond));
            if (change.Append is { } block) queued.Add(transaction.ListRightPushAsync(HistoryKey(id), block.ToByteArray()));
        }

        foreach (string id in batch.DeletedInstances)
        {
            queued.Add(transaction.KeyDeleteAsync([InstanceKey(id), HistoryKey(id)]));
            queued.Add(transaction.SortedSetRemoveAsync(IndexKey, id));
        }

        foreach (var entity in batch.Entities)
        {
            queued.Add(transaction.StringSetAsync(EntityKey(entity.InstanceId), entity.ToByteArray()));
            queued.Add(transaction.SetAddAsync(EntityIndexKey, entity.InstanceId));
        }

        foreach (string id in batch.DeletedEntities)
        {
            queued.Add(transaction.KeyDeleteAsync(EntityKey(id)));
            queued.Add(transaction.SetRemoveAsync(EntityIndexKey, id));
        }

        try
        {
            // No conditions: EXEC either runs every queued command or (EXECABORT: a command was refused while queueing,
            // e.g. out of memory) none.
            if (!await transaction.ExecuteAsync())
            {
                // The condition failed: the earlier attempt of this batch was applied.
                Observe(queued);
                Settled(batch);
                return;
            }
        }
        catch (Exception ex)
        {
            Observe(queued);
            if (ex is RedisConnectionException or RedisTimeoutException or TimeoutException)
            {
                lock (_uncertainGate)
                {
                    _uncertainBatch = batch;
                    _uncertainToken = token;
                }
            }

            if (ex is RedisServerException refused)
            {
                // Redis answered EXEC with an error (EXECABORT: out of memory, read-only replica, ...): nothing was applied.
                throw new StoreUnavailableException(
                    $"Redis at {_provider.Endpoint} refused a batch of task hub '{Hub}' (nothing of it was applied): {refused.Message}", refused);
            }

            if (IsUnavailable(ex)) throw Unavailable("committing a batch (it may or may not have been applied)", ex);
            throw;
        }

        try
        {
            await Task.WhenAll(queued);
        }
        catch (RedisServerException ex)
        {
            // A command failed while running (e.g. a key of the wrong type): Redis applied the others.
            throw Corrupted($"a committed batch was only partly applied ({ex.Message}); keys of the hub were changed outside the scheduler", ex);
        }

        Settled(batch);

        if (!_registered)
        {
            try
            {
                await db.SetAddAsync(_provider.HubsKey, Hub);
                _registered = true;
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                // Registered with a later commit.
            }
        }
    }

    void Settled(CommitBatch batch)
    {
        lock (_uncertainGate)
        {
            if (ReferenceEquals(batch, _uncertainBatch)) _uncertainBatch = null;
        }
    }

    public async Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken);
        try
        {
            var generation = db.HashGetAsync(InstanceKey(instanceId), GenerationField);
            var blocks = db.ListRangeAsync(HistoryKey(instanceId));
            await Task.WhenAll(generation, blocks);
            if (!generation.Result.HasValue) return [];
            int current = (int)generation.Result;
            var history = new List<HistoryBlock>(blocks.Result.Length);
            foreach (var bytes in blocks.Result)
            {
                var block = Parse(HistoryBlock.Parser, bytes, $"a history block of instance '{instanceId}' in '{HistoryKey(instanceId)}'");
                if (block.Generation == current) history.Add(block);
            }

            return history;
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable($"reading the history of instance '{instanceId}'", ex);
        }
    }

    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken)
    {
        try
        {
            var timeout = _provider.Options.HealthProbeTimeout;
            var connection = await _provider.ConnectionAsync(timeout, cancellationToken);
            if (connection is null || !connection.IsConnected) return false;
            await connection.GetDatabase().PingAsync().WaitAsync(timeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _provider.DatabaseAsync(cancellationToken);
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable("connecting", ex);
        }
    }

    internal static bool IsUnavailable(Exception ex) =>
        ex is RedisConnectionException or RedisTimeoutException or TimeoutException
        || (ex is RedisServerException server && IsTransientServerError(server.Message));

    /// <summary>Errors of a server that is alive but cannot serve right now, or not to us (authentication, permissions).</summary>
    static bool IsTransientServerError(string message) =>
        message.StartsWith("NOAUTH", StringComparison.Ordinal)
        || message.StartsWith("WRONGPASS", StringComparison.Ordinal)
        || message.StartsWith("NOPERM", StringComparison.Ordinal)
        || message.StartsWith("LOADING", StringComparison.Ordinal)
        || message.StartsWith("BUSY", StringComparison.Ordinal)
        || message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
        || message.StartsWith("READONLY", StringComparison.Ordinal)
        || message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
        || message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
        || message.StartsWith("OOM", StringComparison.Ordinal)
        || message.StartsWith("EXECABORT", StringComparison.Ordinal)
        || message.StartsWith("MISCONF", StringComparison.Ordinal);

    static void Observe(List<Task> tasks)
    {
        foreach (var task in tasks)
        {
            _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    T Parse<T>(MessageParser<T> parser, RedisValue bytes, string what) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom((byte[])bytes!);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Corrupted($"{what} cannot be read ({ex.Message})", ex);
        }
    }

    StoreCorruptedException Corrupted(string what, Exception? inner = null) =>
        new($"Task hub '{Hub}' in Redis at {_provider.Endpoint} is damaged: {what}.", inner);

    StoreUnavailableException Unavailable(string operation, Exception inner) =>
        new($"Redis at {_provider.Endpoint} cannot be reached or cannot serve task hub '{Hub}' ({operation}): {inner.Message}", inner);
}
