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
/// Layout (version 2), with <c>P</c> = key prefix and <c>H</c> = hub name in lower case:
/// <list type="bullet">
/// <item><c>P:{H}:meta</c> hash: <c>layout</c> = layout version.</item>
/// <item><c>P:{H}:commit</c> string: token of the last batch (makes the retry of a batch whose answer was lost safe).</item>
/// <item><c>P:{H}:instances</c> sorted set: instance ids, scored by creation time (milliseconds since 0001-01-01 UTC).</item>
/// <item><c>P:{H}:ids</c> sorted set: the same ids, all scored 0, so they are in byte order for paged scans (layout 2;
/// built from <c>instances</c> when a layout 1 hub is loaded).</item>
/// <item><c>P:{H}:i:ID</c> hash: <c>record</c> (InstanceRecord bytes), <c>input</c> (layout 3) and the query fields
/// <c>status</c>, <c>name</c>, <c>created</c>, <c>updated</c>, <c>completed</c>, <c>parent</c> (UTC ticks; empty when
/// absent) and <c>generation</c>. The input is written when the hash is written whole (a new instance, a replaced
/// history), and left alone by the updates that follow while it is unchanged: their records leave it out, so a large
/// input is not rewritten with every change. A record that carries an input (layout 2, or an update after a restart)
/// wins over the field.</item>
/// <item><c>P:{H}:h:ID</c> list: HistoryBlock bytes in commit order.</item>
/// <item><c>P:{H}:entities</c> set: entity ids; <c>P:{H}:e:ID</c> string: EntityRecord bytes.</item>
/// </list>
/// A failed commit may be retried with the same <see cref="CommitBatch"/> object: if an earlier attempt was applied after
/// all (its answer was lost with the connection), the retry applies nothing and succeeds.
/// Durability is Redis's: with <c>appendonly yes</c> and <c>appendfsync always</c> an acknowledged batch is in the AOF,
/// flushed, before Redis answers, so it survives a kill of Redis and a power loss. With <c>everysec</c> Redis may answer
/// up to about 2 s before it writes the AOF when the disk is slow, so a kill of Redis can lose acknowledged batches.
/// </remarks>
public sealed class RedisStore : ITaskHubStore
{
    public const int LayoutVersion = 3;

    static readonly RedisValue RecordField = "record";
    static readonly RedisValue InputField = "input";
    /// <summary>What a read of an instance takes from its hash: the record, and the input kept apart from it.</summary>
    static readonly RedisValue[] RecordFields = [RecordField, InputField];
    static readonly RedisValue GenerationField = "generation";
    static readonly RedisValue LayoutField = "layout";

    readonly RedisStoreProvider _provider;
    readonly string _keyBase;
    bool _registered;

    // A batch whose EXEC was sent but whose answer was lost, and the token it wrote to the commit key.
    readonly object _uncertainGate = new();
    CommitBatch? _uncertainBatch;
    string? _uncertainToken;

    /// <summary>The hub lease (as stored) commits are conditioned on (scale-out); null for a lone scheduler.</summary>
    readonly string? _fence;

    internal RedisStore(RedisStoreProvider provider, string hub, string? fence = null)
    {
        _provider = provider;
        _fence = fence;
        Hub = hub;
        _keyBase = $"{provider.Options.KeyPrefix}:{{{hub}}}:";
        MetaKey = _keyBase + "meta";
        CommitKey = _keyBase + "commit";
        IndexKey = _keyBase + "instances";
        IdsKey = _keyBase + "ids";
        EntityIndexKey = _keyBase + "entities";
        ParkedTimersKey = _keyBase + "ptimers";
    }

    public string Hub { get; }

    public bool IsDurable => true;

    internal RedisKey MetaKey { get; }
    internal RedisKey CommitKey { get; }
    internal RedisKey IndexKey { get; }
    internal RedisKey IdsKey { get; }
    internal RedisKey EntityIndexKey { get; }
    internal RedisKey ParkedTimersKey { get; }
    internal RedisKey InstanceKey(string id) => _keyBase + "i:" + id;

    /// <summary>
    /// A parked instance (<see cref="CommitBatch.ParkedInstances"/>) has this added to the status field of its hash
    /// (never to the status in its record): a start reads the status fields and leaves it in Redis. Every write of the
    /// instance sets the field again, which unparks it.
    /// </summary>
    const int ParkedOffset = 100;

    /// <summary>Parks an instance that is still stored (KEYS: its hash, the parked timers; ARGV: the parked status, its id, its next timer or "").</summary>
    const string ParkScript = """
        if redis.call('HEXISTS', KEYS[1], 'record') == 1 then
            redis.call('HSET', KEYS[1], 'status', ARGV[1])
            if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) end
        end
        return 0
        """;
    internal RedisKey HistoryKey(string id) => _keyBase + "h:" + id;
    internal RedisKey EntityKey(string id) => _keyBase + "e:" + id;

    public async Task<StoredHub> LoadAsync(int maxFinishedInstances, CancellationToken cancellationToken)
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
            if (layout.HasValue && (int)layout < 2) await BuildIdIndexAsync(db, page);

            // With a cap, only the statuses are read first; records and histories follow for the instances kept.
            PriorityQueue<string, long>? newestFinished = maxFinishedInstances == int.MaxValue ? null : new();
            for (long start = 0; ; start += page)
            {
                var ids = await db.SortedSetRangeByRankAsync(IndexKey, start, start + page - 1);
                if (ids.Length == 0) break;
                var load = newestFinished is null ? ids : await KeepUnfinishedAsync(db, ids, hub, newestFinished, maxFinishedInstances);
                blocks += await ReadInstancesAsync(db, load, hub);
                if (ids.Length < page) break;
            }

            if (newestFinished is not null)
            {
                var kept = new List<RedisValue>(newestFinished.Count);
                while (newestFinished.TryDequeue(out var id, out _)) kept.Add(id);
                foreach (var chunk in kept.Chunk(page)) blocks += await ReadInstancesAsync(db, chunk, hub);
                foreach (var instance in hub.Instances)
                {
                    int status = instance.Record.Status;
                    if (FinishedStatuses.Contains(status) && status < hub.InStore.Length) hub.InStore[status]--;
                }
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

    public async Task<IReadOnlyList<ParkedInstance>> ReadParkedTimersAsync(long? after, long until, CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken);
        try
        {
            var entries = await db.SortedSetRangeByScoreWithScoresAsync(ParkedTimersKey, after ?? double.NegativeInfinity, until,
                after is null ? Exclude.None : Exclude.Start);
            return entries.Select(e => new ParkedInstance(e.Element!, (long)e.Score)).ToList();
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable("reading the timers of parked instances", ex);
        }
    }

    /// <summary>Upgrades layout 1: fills the id index from the creation index.</summary>
    async Task BuildIdIndexAsync(IDatabase db, int page)
    {
        for (long start = 0; ; start += page)
        {
            var ids = await db.SortedSetRangeByRankAsync(IndexKey, start, start + page - 1);
            if (ids.Length == 0) break;
            await db.SortedSetAddAsync(IdsKey, ids.Select(id => new SortedSetEntry(id, 0)).ToArray());
            if (ids.Length < page) break;
        }

        await db.HashSetAsync(MetaKey, LayoutField, LayoutVersion);
        RedisLogs.Upgraded(_provider.Logger, Hub, 1, LayoutVersion);
    }

    /// <summary>
    /// Of one page of ids, returns the unfinished ones; finished ones compete for the <paramref name="max"/> places of
    /// the most recently finished, and every finished one is counted in <see cref="StoredHub.InStore"/>.
    /// </summary>
    async Task<RedisValue[]> KeepUnfinishedAsync(IDatabase db, RedisValue[] ids, StoredHub hub, PriorityQueue<string, long> newest, int max)
    {
        var fields = new Task<RedisValue[]>[ids.Length];
        RedisValue[] names = ["status", "completed"];
        for (int i = 0; i < ids.Length; i++) fields[i] = db.HashGetAsync(InstanceKey(ids[i]!), names);
        await Task.WhenAll(fields);
        var unfinished = new List<RedisValue>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            var values = fields[i].Result;
            if (values[0].IsNull || !values[0].TryParse(out int status))
                throw Corrupted($"instance '{ids[i]}' is listed in '{IndexKey}' but '{InstanceKey(ids[i]!)}' has no status");
            if (status >= ParkedOffset)
            {
                // Parked: counted, left in Redis until used.
                if (status - ParkedOffset < hub.InStore.Length) hub.InStore[status - ParkedOffset]++;
                continue;
            }

            if (!FinishedStatuses.Contains(status))
            {
                unfinished.Add(ids[i]);
                continue;
            }

            if (status < hub.InStore.Length) hub.InStore[status]++;
            long completed = values[1].TryParse(out long ticks) ? ticks : 0;
            if (max <= 0) continue;
            if (newest.Count < max) newest.Enqueue(ids[i]!, completed);
            else if (newest.TryPeek(out _, out long oldest) && completed > oldest) newest.EnqueueDequeue(ids[i]!, completed);
        }

        return unfinished.ToArray();
    }

    /// <summary>Reads the records and current histories of <paramref name="ids"/> into <paramref name="hub"/>; returns the blocks read.</summary>
    async Task<int> ReadInstancesAsync(IDatabase db, RedisValue[] ids, StoredHub hub)
    {
        var records = new Task<RedisValue[]>[ids.Length];
        var histories = new Task<RedisValue[]>[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            string id = ids[i]!;
            records[i] = db.HashGetAsync(InstanceKey(id), RecordFields);
            histories[i] = db.ListRangeAsync(HistoryKey(id));
        }

        await Task.WhenAll(Task.WhenAll(records), Task.WhenAll(histories));
        int blocks = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            var instance = ToStored(ids[i]!, records[i].Result, histories[i].Result);
            if (instance is null)
                throw Corrupted($"instance '{ids[i]}' is listed in '{IndexKey}' but '{InstanceKey(ids[i]!)}' has no record");
            blocks += instance.History.Count;
            hub.Instances.Add(instance);
        }

        return blocks;
    }

    /// <summary>
    /// The record read from an instance's hash (<see cref="RecordFields"/>), with the input from its own field when the
    /// record leaves it out (<paramref name="inputApart"/>); null when the hash has no record.
    /// </summary>
    InstanceRecord? ToRecord(string id, RedisValue[] fields, out bool inputApart)
    {
        inputApart = false;
        if (fields[0].IsNull) return null;
        var record = Parse(InstanceRecord.Parser, fields[0], $"the record of instance '{id}' in '{InstanceKey(id)}'");
        if (record.InstanceId != id)
            throw Corrupted($"'{InstanceKey(id)}' holds the record of instance '{record.InstanceId}'");
        inputApart = !record.HasInput;
        if (inputApart && !fields[1].IsNull) record.Input = fields[1]!;
        return record;
    }

    StoredInstance? ToStored(string id, RedisValue[] fields, RedisValue[] blocks)
    {
        if (ToRecord(id, fields, out bool inputApart) is not { } record) return null;
        var instance = new StoredInstance { Record = record, InputStoredApart = inputApart };
        foreach (var blockBytes in blocks)
        {
            var block = Parse(HistoryBlock.Parser, blockBytes, $"a history block of instance '{id}' in '{HistoryKey(id)}'");
            if (block.Generation == record.HistoryGeneration) instance.History.Add(block);
        }

        return instance;
    }

    public async Task<StoredInstance?> ReadInstanceAsync(string instanceId, CancellationToken cancellationToken)
    {
        var db = await DatabaseAsync(cancellationToken);
        try
        {
            // One transaction: the record and the history are of the same commit.
            var transaction = db.CreateTransaction();
            var record = transaction.HashGetAsync(InstanceKey(instanceId), RecordFields);
            var blocks = transaction.ListRangeAsync(HistoryKey(instanceId));
            await transaction.ExecuteAsync();
            return ToStored(instanceId, await record, await blocks);
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            throw Unavailable($"reading instance '{instanceId}'", ex);
        }
    }

    public async IAsyncEnumerable<InstanceRecord> ScanInstancesAsync(InstanceScan scan, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const int Page = 256;
        var db = await DatabaseAsync(cancellationToken);
        string? prefix = string.IsNullOrEmpty(scan.Prefix) ? null : scan.Prefix;
        RedisValue min = scan.After is { } after ? "(" + after : "-";
        if (prefix is not null && (scan.After is null || InstanceIdOrder.Instance.Compare(prefix, scan.After) > 0)) min = "[" + prefix;
        while (true)
        {
            RedisValue[] ids;
            RedisValue[][] records;
            try
            {
                ids = await db.ExecuteAsync("ZRANGE", IdsKey, min, "+", "BYLEX", "LIMIT", 0, Page) is { } result ? (RedisValue[])result! : [];
                var reads = new Task<RedisValue[]>[ids.Length];
                for (int i = 0; i < ids.Length; i++) reads[i] = db.HashGetAsync(InstanceKey(ids[i]!), RecordFields);
                records = await Task.WhenAll(reads);
            }
            catch (Exception ex) when (IsUnavailable(ex))
            {
                throw Unavailable("querying instances", ex);
            }

            foreach (var (idValue, fields) in ids.Zip(records))
            {
                string id = idValue!;
                if (prefix is not null && !id.StartsWith(prefix, StringComparison.Ordinal)) yield break;
                if (ToRecord(id, fields, out _) is not { } record) continue; // deleted between the two reads
                if (!scan.Matches(record)) continue;
                yield return record;
            }

            if (ids.Length < Page) yield break;
            min = "(" + (string)ids[^1]!;
        }
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
        var fenced = _fence is null ? null : transaction.AddCondition(Condition.StringEqual(_provider.LeaseKey(Hub), _fence));
        if (retry) transaction.AddCondition(Condition.StringNotEqual(CommitKey, token));
        var queued = new List<Task>(batch.Instances.Count * 3 + batch.DeletedInstances.Count * 2 + batch.Entities.Count * 2 + batch.DeletedEntities.Count * 2 + 2);
        if (!_registered) queued.Add(transaction.HashSetAsync(MetaKey, LayoutField, LayoutVersion));
        queued.Add(transaction.StringSetAsync(CommitKey, token));

        foreach (var change in batch.Instances)
        {
            var record = change.Record;
            string id = record.InstanceId;
            if (change.ReplaceHistory) queued.Add(transaction.KeyDeleteAsync(HistoryKey(id)));
            // A whole write stores the input apart; an update leaves that field alone while the input is the one stored
            // there, and otherwise carries the input in the record, which wins on reading.
            bool whole = !change.IndexUnchanged;
            if (whole && !record.HasInput) queued.Add(transaction.HashDeleteAsync(InstanceKey(id), InputField));
            queued.Add(transaction.HashSetAsync(InstanceKey(id),
            [
                new HashEntry(RecordField, whole || change.InputUnchanged ? record.WithoutInput() : record.ToByteArray()),
                .. whole && record.HasInput ? [new HashEntry(InputField, record.Input)] : Array.Empty<HashEntry>(),
                new HashEntry("status", record.Status),
                new HashEntry("name", record.Name),
                new HashEntry("created", record.CreatedAt),
                new HashEntry("updated", record.LastUpdatedAt),
                new HashEntry("completed", record.HasCompletedAt ? record.CompletedAt : RedisValue.EmptyString),
                new HashEntry("parent", record.HasParentInstanceId ? record.ParentInstanceId : RedisValue.EmptyString),
                new HashEntry(GenerationField, record.HistoryGeneration),
            ]));
            if (!change.IndexUnchanged)
            {
                queued.Add(transaction.SortedSetAddAsync(IndexKey, id, record.CreatedAt / TimeSpan.TicksPerMillisecond));
                queued.Add(transaction.SortedSetAddAsync(IdsKey, id, 0));
            }
            if (change.Append is { } block) queued.Add(transaction.ListRightPushAsync(HistoryKey(id), block.ToByteArray()));
            // The write set the status field again, which unparks the instance; its parked timer goes with it.
            if (change.Unparks) queued.Add(transaction.SortedSetRemoveAsync(ParkedTimersKey, id));
        }

        foreach (string id in batch.DeletedInstances)
        {
            queued.Add(transaction.KeyDeleteAsync([InstanceKey(id), HistoryKey(id)]));
            queued.Add(transaction.SortedSetRemoveAsync(IndexKey, id));
            queued.Add(transaction.SortedSetRemoveAsync(IdsKey, id));
            queued.Add(transaction.SortedSetRemoveAsync(ParkedTimersKey, id));
        }

        foreach (var parked in batch.ParkedInstances)
        {
            queued.Add(transaction.ScriptEvaluateAsync(ParkScript, [InstanceKey(parked.InstanceId), ParkedTimersKey],
                [parked.Status + ParkedOffset, parked.InstanceId, parked.NextTimer is { } due ? due : RedisValue.EmptyString]));
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
            // EXEC either runs every queued command or (EXECABORT: a command was refused while queueing,
            // e.g. out of memory) none.
            if (!await transaction.ExecuteAsync())
            {
                Observe(queued);
                if (fenced is { WasSatisfied: false })
                {
                    // Another replica took the hub over (this one's hub lease expired): it must not write.
                    throw new StoreFencedException(
                        $"task hub '{Hub}' is no longer leased to this scheduler replica in Redis at {_provider.Endpoint}; the batch was not applied");
                }

                // The earlier attempt of this batch was applied.
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
