using System.Diagnostics;
using DurableTask.Scheduler.Storage.Records;
using Google.Protobuf;
using Microsoft.Data.Sqlite;

namespace DurableTask.Scheduler.Storage.Sqlite;

/// <summary>
/// One task hub in one SQLite database (WAL journal). A batch is one transaction on a dedicated write connection
/// whose statements are prepared once and reused; history reads for evicted instances use a second connection, so
/// they never wait for a commit. A lock file next to the database keeps a second scheduler process out.
/// </summary>
/// <remarks>
/// With <c>synchronous=NORMAL</c> (the default) a commit is in the WAL file, not yet flushed to the disk, when it is
/// acknowledged: it survives a kill of the process; <c>FULL</c> flushes every commit and also survives a power loss.
/// A transaction torn by a crash is rolled back by SQLite when the file is next opened.
/// </remarks>
public sealed class SqliteStore : ITaskHubStore
{
    /// <summary>
    /// A parked instance (<see cref="CommitBatch.ParkedInstances"/>) has this added to the status column (never to the
    /// status in its record): the start leaves it out with one range of the status index, and counts it from that
    /// index. Writing the instance's status again unparks it. Queries by status ask for both forms.
    /// </summary>
    const int ParkedOffset = 100;

    static readonly string UnfinishedSql = string.Join(", ", FinishedStatuses.Unfinished);

    const int SqliteCorrupt = 11;
    const int SqliteNotADatabase = 26;

    readonly SqliteStoreOptions _options;
    readonly ILogger _logger;
    readonly SemaphoreSlim _writeGate = new(1, 1);
    readonly SemaphoreSlim _readGate = new(1, 1);

    FileStream? _lockFile;
    SqliteConnection? _write;
    SqliteConnection? _read;
    Statements? _statements;
    SqliteCommand? _readHistory;
    SqliteCommand? _readInstance;
    bool _disposed;

    public SqliteStore(string path, SqliteStoreOptions options, ILogger logger)
    {
        Path = path;
        _options = options;
        _logger = logger;
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    public bool IsDurable => true;

    public async Task<StoredHub> LoadAsync(int maxFinishedInstances, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            var connection = EnsureOpen();
            var stopwatch = Stopwatch.StartNew();
            var hub = new StoredHub();
            var byId = new Dictionary<string, StoredInstance>(StringComparer.Ordinal);
            int blocks = 0;
            try
            {
                // One read transaction: a consistent snapshot of the three tables.
                using var transaction = connection.BeginTransaction(deferred: true);
                void ReadInstances(string sql)
                {
                    using var command = Command(connection, transaction, sql);
                    using var reader = command.ExecuteReader();
                    while (reader.Read())
                    {
                        string id = reader.GetString(0);
                        var record = ParseInstance(reader, 1, id, out bool inputApart);
                        var instance = new StoredInstance { Record = record, InputStoredApart = inputApart };
                        byId[id] = instance;
                        hub.Instances.Add(instance);
                    }
                }

                string historySql;
                if (maxFinishedInstances == int.MaxValue)
                {
                    ReadInstances("SELECT instance_id, record, input FROM instances LEFT JOIN instance_inputs USING (instance_id)");
                    historySql = "SELECT instance_id, generation, block FROM history ORDER BY id";
                }
                else
                {
                    // Unfinished instances that are not parked, then the most recently finished ones; the rest stay in
                    // the file, and so does their history.
                    string unparked = $"SELECT instance_id FROM instances WHERE status IN ({UnfinishedSql})";
                    string recent = $"SELECT instance_id FROM instances WHERE status IN ({FinishedStatuses.SqlList}) " +
                        $"ORDER BY completed_at DESC LIMIT {Math.Max(0, maxFinishedInstances)}";
                    ReadInstances($"SELECT instance_id, record, input FROM instances LEFT JOIN instance_inputs USING (instance_id) WHERE status IN ({UnfinishedSql})");
                    ReadInstances($"SELECT instance_id, record, input FROM instances LEFT JOIN instance_inputs USING (instance_id) WHERE status IN ({FinishedStatuses.SqlList}) " +
                        $"ORDER BY completed_at DESC LIMIT {Math.Max(0, maxFinishedInstances)}");
                    historySql = $"SELECT instance_id, generation, block FROM history WHERE instance_id IN ({unparked} UNION ALL SELECT * FROM ({recent})) ORDER BY id";
                    // What stays in the file, per status: every instance the counts know of, less those read.
                    using var counts = Command(connection, transaction, "SELECT status, SUM(n) FROM instance_counts GROUP BY status");
                    using var reader = counts.ExecuteReader();
                    while (reader.Read())
                    {
                        int status = reader.GetInt32(0);
                        if (status >= 0 && status < hub.InStore.Length) hub.InStore[status] += reader.GetInt32(1);
                    }

                    foreach (var instance in hub.Instances)
                    {
                        int status = instance.Record.Status;
                        if (status >= 0 && status < hub.InStore.Length) hub.InStore[status]--;
                    }
                }

                // Rowid order is commit order.
                using (var command = Command(connection, transaction, historySql))
                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        string id = reader.GetString(0);
                        if (!byId.TryGetValue(id, out var instance) || reader.GetInt32(1) != instance.Record.HistoryGeneration) continue;
                        instance.History.Add(Parse(HistoryBlock.Parser, reader, 2, "history of instance", id));
                        blocks++;
                    }
                }

                using (var command = Command(connection, transaction, "SELECT instance_id, record FROM entities"))
                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        string id = reader.GetString(0);
                        var record = Parse(EntityRecord.Parser, reader, 1, "entity", id);
                        if (record.InstanceId != id)
                            throw Corrupted($"the row of entity '{id}' holds the record of entity '{record.InstanceId}'");
                        hub.Entities.Add(record);
                    }
                }

                transaction.Commit();
            }
            catch (SqliteException ex)
            {
                throw Translate(ex, "reading the task hub");
            }

            SqliteLogs.Loaded(_logger, Path, hub.Instances.Count, blocks, hub.Entities.Count, stopwatch.ElapsedMilliseconds);
            return hub;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public async Task CommitAsync(CommitBatch batch, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.IsEmpty) return;
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            var connection = EnsureOpen();
            var s = _statements!;
            SqliteTransaction? transaction = null;
            try
            {
                transaction = connection.BeginTransaction();
                s.Enlist(transaction);

                foreach (var change in batch.Instances)
                {
                    var record = change.Record;
                    if (change.ReplaceHistory)
                    {
                        s.DeleteHistoryId.Value = record.InstanceId;
                        s.DeleteHistory.ExecuteNonQuery();
                    }

                    // A row already stored is updated in the columns that can have changed, so SQLite leaves the
                    // index entries of the others alone (and those of the status, when it is the same). Should the
                    // row not be there after all, the full upsert writes it. The input has a table of its own,
                    // written with the whole row; an update leaves it alone, and its record leaves the input out
                    // while it is the one stored there (else the record carries it and wins on reading).
                    byte[]? withoutInput = null;
                    bool updated = false;
                    if (change.IndexUnchanged)
                    {
                        var bytes = change.InputUnchanged ? withoutInput = record.WithoutInput() : record.ToByteArray();
                        if (change.StatusUnchanged)
                        {
                            s.RecordOnlyId.Value = record.InstanceId;
                            s.RecordOnlyLastUpdatedAt.Value = record.LastUpdatedAt;
                            s.RecordOnlyRecord.Value = bytes;
                            updated = s.UpdateRecordOnly.ExecuteNonQuery() == 1;
                        }
                        else
                        {
                            s.StatusId.Value = record.InstanceId;
                            s.StatusStatus.Value = record.Status;
                            s.StatusLastUpdatedAt.Value = record.LastUpdatedAt;
                            s.StatusCompletedAt.Value = record.HasCompletedAt ? record.CompletedAt : DBNull.Value;
                            s.StatusRecord.Value = bytes;
                            updated = s.UpdateStatus.ExecuteNonQuery() == 1;
                        }
                    }

                    if (!updated)
                    {
                        s.InstanceId.Value = record.InstanceId;
                        s.InstanceName.Value = record.Name;
                        s.InstanceStatus.Value = record.Status;
                        s.InstanceCreatedAt.Value = record.CreatedAt;
                        s.InstanceLastUpdatedAt.Value = record.LastUpdatedAt;
                        s.InstanceCompletedAt.Value = record.HasCompletedAt ? record.CompletedAt : DBNull.Value;
                        s.InstanceParent.Value = record.HasParentInstanceId ? record.ParentInstanceId : DBNull.Value;
                        s.InstanceGeneration.Value = record.HistoryGeneration;
                        s.InstanceRecord.Value = withoutInput ?? record.WithoutInput();
                        s.UpsertInstance.ExecuteNonQuery();
                        if (record.HasInput)
                        {
                            s.UpsertInputId.Value = record.InstanceId;
                            s.UpsertInputValue.Value = record.Input;
                            s.UpsertInput.ExecuteNonQuery();
                        }
                        else
                        {
                            // An earlier execution's input must not come back with this one.
                            s.DeleteInputId.Value = record.InstanceId;
                            s.DeleteInput.ExecuteNonQuery();
                        }
                    }

                    if (change.Unparks)
                    {
                        s.UnparkTimerId.Value = record.InstanceId;
                        s.UnparkTimer.ExecuteNonQuery();
                    }

                    if (change.Append is { } block)
                    {
                        s.AppendHistoryId.Value = record.InstanceId;
                        s.AppendHistoryGeneration.Value = block.Generation;
                        s.AppendHistoryBlock.Value = block.ToByteArray();
                        s.AppendHistory.ExecuteNonQuery();
                    }
                }

                foreach (string id in batch.DeletedInstances)
                {
                    s.DeleteHistoryId.Value = id;
                    s.DeleteHistory.ExecuteNonQuery();
                    s.DeleteInstanceId.Value = id;
                    s.DeleteInstance.ExecuteNonQuery();
                    s.DeleteInputId.Value = id;
                    s.DeleteInput.ExecuteNonQuery();
                    s.UnparkTimerId.Value = id;
                    s.UnparkTimer.ExecuteNonQuery();
                }

                foreach (var parked in batch.ParkedInstances)
                {
                    s.ParkId.Value = parked.InstanceId;
                    if (s.Park.ExecuteNonQuery() == 1 && parked.NextTimer is { } due)
                    {
                        s.ParkTimerId.Value = parked.InstanceId;
                        s.ParkTimerDue.Value = due;
                        s.ParkTimer.ExecuteNonQuery();
                    }
                }

                foreach (var entity in batch.Entities)
                {
                    s.EntityId.Value = entity.InstanceId;
                    s.EntityLastModified.Value = entity.LastModified;
                    s.EntityRecord.Value = entity.ToByteArray();
                    s.UpsertEntity.ExecuteNonQuery();
                }

                foreach (string id in batch.DeletedEntities)
                {
                    s.DeleteEntityId.Value = id;
                    s.DeleteEntity.ExecuteNonQuery();
                }

                transaction.Commit();
            }
            catch (SqliteException ex)
            {
                RollBack(transaction);
                throw Translate(ex, "committing a batch");
            }
            catch
            {
                RollBack(transaction);
                throw;
            }
            finally
            {
                transaction?.Dispose();
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public async Task<IReadOnlyList<HistoryBlock>> ReadHistoryAsync(string instanceId, CancellationToken cancellationToken)
    {
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            var command = await EnsureReadCommandAsync(cancellationToken);
            command.Parameters[0].Value = instanceId;
            var blocks = new List<HistoryBlock>();
            try
            {
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    blocks.Add(Parse(HistoryBlock.Parser, reader, 0, "history of instance", instanceId));
                }
            }
            catch (SqliteException ex)
            {
                throw Translate(ex, $"reading the history of instance '{instanceId}'");
            }

            return blocks;
        }
        finally
        {
            _readGate.Release();
        }
    }

    public async Task<StoredInstance?> ReadInstanceAsync(string instanceId, CancellationToken cancellationToken)
    {
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            var command = await EnsureReadCommandAsync(cancellationToken);
            var read = _readInstance!;
            read.Parameters[0].Value = instanceId;
            try
            {
                // One read transaction, so the record and its history are of the same commit.
                using var transaction = _read!.BeginTransaction(deferred: true);
                read.Transaction = transaction;
                command.Transaction = transaction;
                StoredInstance? stored = null;
                using (var reader = read.ExecuteReader())
                {
                    if (reader.Read())
                    {
                        stored = new StoredInstance { Record = ParseInstance(reader, 0, instanceId, out bool inputApart), InputStoredApart = inputApart };
                    }
                }

                if (stored is not null)
                {
                    command.Parameters[0].Value = instanceId;
                    using var reader = command.ExecuteReader();
                    while (reader.Read()) stored.History.Add(Parse(HistoryBlock.Parser, reader, 0, "history of instance", instanceId));
                }

                transaction.Commit();
                return stored;
            }
            catch (SqliteException ex)
            {
                throw Translate(ex, $"reading instance '{instanceId}'");
            }
            finally
            {
                read.Transaction = null;
                command.Transaction = null;
            }
        }
        finally
        {
            _readGate.Release();
        }
    }


    public async Task<IReadOnlyList<ParkedInstance>> ReadParkedTimersAsync(long? after, long until, CancellationToken cancellationToken)
    {
        var due = new List<ParkedInstance>();
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            await EnsureReadCommandAsync(cancellationToken);
            using var command = _read!.CreateCommand();
            command.CommandText = after is null
                ? "SELECT instance_id, due FROM parked_timers WHERE due <= $until ORDER BY due"
                : "SELECT instance_id, due FROM parked_timers WHERE due > $after AND due <= $until ORDER BY due";
            command.Parameters.AddWithValue("$until", until);
            if (after is { } from) command.Parameters.AddWithValue("$after", from);
            using var reader = command.ExecuteReader();
            while (reader.Read()) due.Add(new ParkedInstance(reader.GetString(0), reader.GetInt64(1)));
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "reading the timers of parked instances");
        }
        finally
        {
            _readGate.Release();
        }

        return due;
    }

    public async Task<int[]> CountInstancesAsync(InstanceScan scan, CancellationToken cancellationToken)
    {
        // The version is inside the record, not a column: such a count reads the records.
        if (scan.Version is not null) return await ITaskHubStore.CountByReadingAsync(this, scan, cancellationToken);
        var counts = new int[8];
        var names = scan.Name is null ? null : await NamesLikeAsync(scan.Name, cancellationToken);
        if (names is { Count: 0 }) return counts;

        // Conditions on the name, the parent and the status alone are answered from the counts the triggers keep.
        bool fromCounts = string.IsNullOrEmpty(scan.Prefix) && scan.CreatedFrom is null && scan.CreatedTo is null
            && scan.CompletedFrom is null && scan.CompletedTo is null;
        var condition = new ScanCondition(scan, names, forIdOrder: false);
        var sql = new System.Text.StringBuilder();
        if (fromCounts)
        {
            sql.Append("SELECT status, SUM(n) FROM instance_counts WHERE 1");
            if (names is not null) sql.Append(" AND name IN (").AppendJoin(", ", names.Select((_, i) => $"$name{i}")).Append(')');
            if (scan.TopLevelOnly) sql.Append(" AND top_level = 1");
            if (scan.Statuses is { Count: > 0 } statuses) sql.Append(" AND status IN (").AppendJoin(", ", statuses).Append(')');
        }
        else
        {
            sql.Append("SELECT status, COUNT(*) FROM instances WHERE 1");
            condition.AppendTo(sql);
        }

        sql.Append(" GROUP BY status");
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            await EnsureReadCommandAsync(cancellationToken);
            using var command = _read!.CreateCommand();
            command.CommandText = sql.ToString();
            condition.Bind(command);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                int status = reader.GetInt32(0);
                if (status >= ParkedOffset) status -= ParkedOffset;
                if ((uint)status < (uint)counts.Length) counts[status] += reader.GetInt32(1);
            }
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "counting instances");
        }
        finally
        {
            _readGate.Release();
        }

        return counts;
    }

    /// <summary>
    /// Instance records in id order, in pages that each seek past the last id read. The scan's fields are
    /// conditions on the indexed columns; a prefix is a range of the primary key, so a scan reads only the ids under it.
    /// The version, kept only inside the record, is checked on each record read.
    /// </summary>
    public async IAsyncEnumerable<InstanceRecord> ScanInstancesAsync(InstanceScan scan,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const int PageSize = 256;
        var names = scan.Name is null ? null : await NamesLikeAsync(scan.Name, cancellationToken);
        if (names is { Count: 0 }) yield break;

        var sql = new System.Text.StringBuilder("SELECT instance_id, record, input FROM instances LEFT JOIN instance_inputs USING (instance_id) WHERE instance_id > $after");
        var condition = new ScanCondition(scan, names, forIdOrder: true);
        condition.AppendTo(sql);
        sql.Append(" ORDER BY instance_id LIMIT ").Append(PageSize);
        string? prefix = condition.Prefix;

        // The first page starts at the later of the cursor and the prefix (an id equal to the prefix is included).
        string after = scan.After ?? "";
        bool includeAfter = false;
        if (prefix is not null && InstanceIdOrder.Instance.Compare(prefix, after) > 0)
        {
            after = prefix;
            includeAfter = true;
        }

        while (true)
        {
            var page = new List<InstanceRecord>(PageSize);
            await _readGate.WaitAsync(cancellationToken);
            try
            {
                await EnsureReadCommandAsync(cancellationToken);
                using var command = _read!.CreateCommand();
                command.CommandText = includeAfter ? sql.ToString().Replace("instance_id > $after", "instance_id >= $after") : sql.ToString();
                command.Parameters.AddWithValue("$after", after);
                condition.Bind(command);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    string id = reader.GetString(0);
                    page.Add(ParseInstance(reader, 1, id, out _));
                    after = id;
                }
            }
            catch (SqliteException ex)
            {
                throw Translate(ex, "querying instances");
            }
            finally
            {
                _readGate.Release();
            }

            includeAfter = false;
            foreach (var record in page)
            {
                if (scan.MatchesVersion(record)) yield return record;
            }

            if (page.Count < PageSize) yield break;
        }
    }

    /// <summary>The conditions of an <see cref="InstanceScan"/> on the indexed columns of <c>instances</c>, and their parameters.</summary>
    /// <param name="names">The stored names the scan's name stands for (<see cref="NamesLikeAsync"/>), or null for any.</param>
    /// <param name="forIdOrder">
    /// For a scan in id order: the name condition then does not use the name index (SQLite would read every row of
    /// that name and sort them for each page); the primary key's order is walked instead, skipping other names. So does
    /// a status condition, unless the scan says few records match it (<see cref="InstanceScan.Selective"/>): then
    /// reading them all through the status index beats walking past the others.
    /// </param>
    sealed class ScanCondition(InstanceScan scan, List<string>? names, bool forIdOrder)
    {
        public string? Prefix { get; } = string.IsNullOrEmpty(scan.Prefix) ? null : scan.Prefix;

        /// <summary>The end of the prefix's range of ids, exclusive, so the primary key bounds the scan on both sides.</summary>
        readonly string? _upper = string.IsNullOrEmpty(scan.Prefix) ? null : InstanceScan.UpperBound(scan.Prefix);

        public void AppendTo(System.Text.StringBuilder sql)
        {
            if (Prefix is not null) sql.Append(" AND instance_id >= $prefix");
            if (_upper is not null) sql.Append(" AND instance_id < $upper");
            else if (Prefix is not null) sql.Append(" AND substr(instance_id, 1, length($prefix)) = $prefix");
            if (scan.Statuses is { Count: > 0 } statuses)
            {
                // An unfinished status is asked for in both forms: as written, and parked.
                var stored = statuses.Concat(statuses.Where(s => !FinishedStatuses.Contains(s)).Select(s => s + ParkedOffset));
                // A count under a prefix reads the prefix's range of the ids (and their rows), whatever the statuses
                // asked for: the status index would have it read every instance of those statuses.
                bool walkIds = forIdOrder ? !scan.Selective : Prefix is not null;
                sql.Append(walkIds ? " AND +status IN (" : " AND status IN (").AppendJoin(", ", stored).Append(')');
            }

            if (names is not null) sql.Append(forIdOrder || Prefix is not null ? " AND +name IN (" : " AND name IN (").AppendJoin(", ", names.Select((_, i) => $"$name{i}")).Append(')');
            if (scan.CreatedFrom is not null) sql.Append(" AND created_at >= $createdFrom");
            if (scan.CreatedTo is not null) sql.Append(" AND created_at <= $createdTo");
            if (scan.CompletedFrom is not null) sql.Append(" AND completed_at >= $completedFrom");
            if (scan.CompletedTo is not null) sql.Append(" AND completed_at <= $completedTo");
            if (scan.TopLevelOnly) sql.Append(" AND parent_instance_id IS NULL");
        }

        public void Bind(SqliteCommand command)
        {
            if (Prefix is not null) command.Parameters.AddWithValue("$prefix", Prefix);
            if (_upper is not null) command.Parameters.AddWithValue("$upper", _upper);
            if (names is not null)
            {
                for (int i = 0; i < names.Count; i++) command.Parameters.AddWithValue($"$name{i}", names[i]);
            }

            if (scan.CreatedFrom is { } createdFrom) command.Parameters.AddWithValue("$createdFrom", createdFrom);
            if (scan.CreatedTo is { } createdTo) command.Parameters.AddWithValue("$createdTo", createdTo);
            if (scan.CompletedFrom is { } completedFrom) command.Parameters.AddWithValue("$completedFrom", completedFrom);
            if (scan.CompletedTo is { } completedTo) command.Parameters.AddWithValue("$completedTo", completedTo);
        }
    }

    /// <summary>
    /// The stored names equal to <paramref name="name"/> ignoring case (ordinal, as queries compare names), so the
    /// name index answers the condition (SQLite's own NOCASE folds only ASCII letters).
    /// </summary>
    async Task<List<string>> NamesLikeAsync(string name, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            await EnsureReadCommandAsync(cancellationToken);
            using var command = _read!.CreateCommand();
            command.CommandText = "SELECT DISTINCT name FROM instance_counts";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                string stored = reader.GetString(0);
                if (string.Equals(stored, name, StringComparison.OrdinalIgnoreCase)) names.Add(stored);
            }
        }
        catch (SqliteException ex)
        {
            throw Translate(ex, "querying instance names");
        }
        finally
        {
            _readGate.Release();
        }

        return names;
    }

    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken)
    {
        if (_disposed) return false;
        await _readGate.WaitAsync(cancellationToken);
        try
        {
            if (_read is null) await EnsureReadCommandAsync(cancellationToken);
            using var command = _read!.CreateCommand();
            command.CommandText = "SELECT version FROM schema_version";
            return command.ExecuteScalar() is not null;
        }
        catch (Exception ex) when (ex is SqliteException or StoreCorruptedException or StoreUnavailableException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            _readGate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        // Same order as a first history read, which opens the database: read gate, then write gate.
        await _readGate.WaitAsync();
        await _writeGate.WaitAsync();
        try
        {
            if (_disposed) return;
            _disposed = true;
            CloseConnections();
        }
        finally
        {
            _writeGate.Release();
            _readGate.Release();
        }
    }

    /// <summary>Opens the database on first use: takes the lock file, creates or upgrades the schema, prepares the statements.</summary>
    SqliteConnection EnsureOpen()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_write is not null) return _write;

        var stopwatch = Stopwatch.StartNew();
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            _lockFile = AcquireLock();
            var connection = new SqliteConnection(ConnectionString(SqliteOpenMode.ReadWriteCreate));
            _write = connection;
            connection.Open();

            int version = ReadSchemaVersion(connection);
            if (version > SqliteSchema.CurrentVersion)
            {
                throw new StoreCorruptedException(
                    $"SQLite database '{Path}' has schema version {version}, but this scheduler knows versions up to {SqliteSchema.CurrentVersion}: " +
                    "it was written by a newer scheduler. Run that version, or point Scheduler:DataPath to another folder.");
            }

            Execute(connection, "PRAGMA journal_mode=WAL");
            Execute(connection, $"PRAGMA synchronous={_options.SynchronousPragma}");
            Execute(connection, "PRAGMA temp_store=MEMORY");

            if (version < SqliteSchema.CurrentVersion) Upgrade(connection, version);

            if (_options.IntegrityCheckOnOpen)
            {
                using var check = connection.CreateCommand();
                check.CommandText = "PRAGMA quick_check";
                var result = check.ExecuteScalar() as string;
                if (result != "ok") throw Corrupted($"integrity check failed: {result}");
            }

            _statements = new Statements(connection);
            SqliteLogs.Opened(_logger, Path, SqliteSchema.CurrentVersion, _options.SynchronousPragma, stopwatch.ElapsedMilliseconds);
            return connection;
        }
        catch (Exception ex)
        {
            CloseConnections();
            if (ex is SqliteException sqlite) throw Translate(sqlite, "opening the database");
            throw;
        }
    }

    async Task<SqliteCommand> EnsureReadCommandAsync(CancellationToken cancellationToken)
    {
        if (_readHistory is not null) return _readHistory;

        // The write connection creates the file and schema first.
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            EnsureOpen();
            try
            {
                _read = new SqliteConnection(ConnectionString(SqliteOpenMode.ReadWrite));
                _read.Open();
                var command = _read.CreateCommand();
                command.CommandText =
                    "SELECT block FROM history WHERE instance_id = $id AND generation = " +
                    "(SELECT history_generation FROM instances WHERE instance_id = $id) ORDER BY id";
                command.Parameters.Add("$id", SqliteType.Text);
                command.Prepare();
                var instance = _read.CreateCommand();
                instance.CommandText = "SELECT record, input FROM instances LEFT JOIN instance_inputs USING (instance_id) WHERE instance_id = $id";
                instance.Parameters.Add("$id", SqliteType.Text);
                instance.Prepare();
                _readInstance = instance;
                _readHistory = command;
                return command;
            }
            catch (SqliteException ex)
            {
                _read?.Dispose();
                _read = null;
                throw Translate(ex, "opening the database for reading");
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    string ConnectionString(SqliteOpenMode mode) => new SqliteConnectionStringBuilder
    {
        DataSource = Path,
        Mode = mode,
        Cache = SqliteCacheMode.Private,
        Pooling = false,
        DefaultTimeout = 5,
    }.ToString();

    FileStream AcquireLock()
    {
        string lockPath = Path + ".lock";
        try
        {
            return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
        }
        catch (IOException ex)
        {
            throw new StoreUnavailableException(
                $"SQLite database '{Path}' is in use by another scheduler process (its lock file '{lockPath}' is held). " +
                "Each data folder can be served by one scheduler at a time.", ex);
        }
    }

    int ReadSchemaVersion(SqliteConnection connection)
    {
        long objects = (long)Scalar(connection, "SELECT count(*) FROM sqlite_master")!;
        if (objects == 0) return 0;

        long applicationId = (long)Scalar(connection, "PRAGMA application_id")!;
        long versionTables = (long)Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")!;
        if (applicationId != SqliteSchema.ApplicationId || versionTables == 0)
        {
            throw new StoreCorruptedException(
                $"'{Path}' is a SQLite database, but not a task hub database of the scheduler (it has no scheduler schema). " +
                "Move it away or point Scheduler:DataPath to another folder.");
        }

        var version = Scalar(connection, "SELECT version FROM schema_version");
        if (version is not long v) throw Corrupted("its schema_version table is empty");
        return (int)v;
    }

    void Upgrade(SqliteConnection connection, int from)
    {
        using var transaction = connection.BeginTransaction();
        for (int step = from; step < SqliteSchema.CurrentVersion; step++)
        {
            using var command = Command(connection, transaction, SqliteSchema.Steps[step]);
            command.ExecuteNonQuery();
        }

        using (var command = Command(connection, transaction, $"UPDATE schema_version SET version = {SqliteSchema.CurrentVersion}"))
            command.ExecuteNonQuery();
        using (var command = Command(connection, transaction, $"PRAGMA application_id = {SqliteSchema.ApplicationId}"))
            command.ExecuteNonQuery();
        transaction.Commit();

        if (from == 0) SqliteLogs.Created(_logger, Path, SqliteSchema.CurrentVersion);
        else SqliteLogs.Upgraded(_logger, Path, from, SqliteSchema.CurrentVersion);
    }

    void CloseConnections()
    {
        _statements?.Dispose();
        _statements = null;
        _readHistory?.Dispose();
        _readHistory = null;
        _readInstance?.Dispose();
        _readInstance = null;
        _read?.Dispose();
        _read = null;
        _write?.Dispose();
        _write = null;
        _lockFile?.Dispose();
        _lockFile = null;
    }

    static void RollBack(SqliteTransaction? transaction)
    {
        if (transaction is null) return;
        try
        {
            transaction.Rollback();
        }
        catch (Exception)
        {
            // SQLite may already have rolled the transaction back (I/O error, disk full); nothing of it is applied.
        }
    }

    T Parse<T>(MessageParser<T> parser, SqliteDataReader reader, int column, string what, string id) where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(reader.GetFieldValue<byte[]>(column));
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Corrupted($"the stored {what} '{id}' cannot be read ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// The instance record in column <paramref name="column"/>, with its input from the column that follows (from
    /// <c>instance_inputs</c>) when the record leaves it out (see schema version 2); <paramref name="inputApart"/> says so.
    /// </summary>
    InstanceRecord ParseInstance(SqliteDataReader reader, int column, string id, out bool inputApart)
    {
        var record = Parse(InstanceRecord.Parser, reader, column, "instance", id);
        if (record.InstanceId != id)
            throw Corrupted($"the row of instance '{id}' holds the record of instance '{record.InstanceId}'");
        inputApart = !record.HasInput;
        if (inputApart && !reader.IsDBNull(column + 1)) record.Input = reader.GetString(column + 1);
        return record;
    }

    StoreCorruptedException Corrupted(string what, Exception? inner = null) =>
        new($"SQLite database '{Path}' is damaged: {what}.", inner);

    Exception Translate(SqliteException ex, string operation) => ex.SqliteErrorCode switch
    {
        SqliteCorrupt or SqliteNotADatabase => new StoreCorruptedException(
            $"SQLite database '{Path}' is damaged or is not a database ({ex.Message}) while {operation}. " +
            "Restore it from a backup or move it away to start the task hub empty.", ex),
        // I/O error, disk full, cannot open, read-only, busy/locked, out of memory, permission.
        10 or 13 or 14 or 8 or 5 or 6 or 7 or 3 or 15 => new StoreUnavailableException(
            $"SQLite database '{Path}' is not usable while {operation}: {ex.Message}", ex),
        _ => ex,
    };

    static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    static void Execute(SqliteConnection connection, string sql)
    {
        using var command = Command(connection, null, sql);
        command.ExecuteNonQuery();
    }

    static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = Command(connection, null, sql);
        return command.ExecuteScalar();
    }

    /// <summary>The write statements, prepared once per connection; a commit only sets parameter values.</summary>
    sealed class Statements : IDisposable
    {
        readonly SqliteCommand[] _all;

        public Statements(SqliteConnection connection)
        {
            UpsertInstance = Create(connection,
                """
                INSERT INTO instances (instance_id, name, status, created_at, last_updated_at, completed_at, parent_instance_id, history_generation, record)
                VALUES ($id, $name, $status, $created, $updated, $completed, $parent, $generation, $record)
                ON CONFLICT (instance_id) DO UPDATE SET
                    name = excluded.name, status = excluded.status, created_at = excluded.created_at,
                    last_updated_at = excluded.last_updated_at, completed_at = excluded.completed_at,
                    parent_instance_id = excluded.parent_instance_id, history_generation = excluded.history_generation,
                    record = excluded.record
                """);
            InstanceId = UpsertInstance.Parameters.Add("$id", SqliteType.Text);
            InstanceName = UpsertInstance.Parameters.Add("$name", SqliteType.Text);
            InstanceStatus = UpsertInstance.Parameters.Add("$status", SqliteType.Integer);
            InstanceCreatedAt = UpsertInstance.Parameters.Add("$created", SqliteType.Integer);
            InstanceLastUpdatedAt = UpsertInstance.Parameters.Add("$updated", SqliteType.Integer);
            InstanceCompletedAt = UpsertInstance.Parameters.Add("$completed", SqliteType.Integer);
            InstanceParent = UpsertInstance.Parameters.Add("$parent", SqliteType.Text);
            InstanceGeneration = UpsertInstance.Parameters.Add("$generation", SqliteType.Integer);
            InstanceRecord = UpsertInstance.Parameters.Add("$record", SqliteType.Blob);

            UpdateStatus = Create(connection,
                """
                UPDATE instances SET status = $status, last_updated_at = $updated, completed_at = $completed, record = $record
                WHERE instance_id = $id
                """);
            StatusId = UpdateStatus.Parameters.Add("$id", SqliteType.Text);
            StatusStatus = UpdateStatus.Parameters.Add("$status", SqliteType.Integer);
            StatusLastUpdatedAt = UpdateStatus.Parameters.Add("$updated", SqliteType.Integer);
            StatusCompletedAt = UpdateStatus.Parameters.Add("$completed", SqliteType.Integer);
            StatusRecord = UpdateStatus.Parameters.Add("$record", SqliteType.Blob);

            UpdateRecordOnly = Create(connection, "UPDATE instances SET last_updated_at = $updated, record = $record WHERE instance_id = $id");
            RecordOnlyId = UpdateRecordOnly.Parameters.Add("$id", SqliteType.Text);
            RecordOnlyLastUpdatedAt = UpdateRecordOnly.Parameters.Add("$updated", SqliteType.Integer);
            RecordOnlyRecord = UpdateRecordOnly.Parameters.Add("$record", SqliteType.Blob);

            Park = Create(connection, $"UPDATE instances SET status = status + {ParkedOffset} WHERE instance_id = $id AND status IN ({UnfinishedSql})");
            ParkId = Park.Parameters.Add("$id", SqliteType.Text);
            ParkTimer = Create(connection, "INSERT INTO parked_timers (instance_id, due) VALUES ($id, $due) ON CONFLICT (instance_id) DO UPDATE SET due = excluded.due");
            ParkTimerId = ParkTimer.Parameters.Add("$id", SqliteType.Text);
            ParkTimerDue = ParkTimer.Parameters.Add("$due", SqliteType.Integer);
            UnparkTimer = Create(connection, "DELETE FROM parked_timers WHERE instance_id = $id");
            UnparkTimerId = UnparkTimer.Parameters.Add("$id", SqliteType.Text);

            DeleteInstance = Create(connection, "DELETE FROM instances WHERE instance_id = $id");
            DeleteInstanceId = DeleteInstance.Parameters.Add("$id", SqliteType.Text);

            UpsertInput = Create(connection,
                "INSERT INTO instance_inputs (instance_id, input) VALUES ($id, $input) ON CONFLICT (instance_id) DO UPDATE SET input = excluded.input");
            UpsertInputId = UpsertInput.Parameters.Add("$id", SqliteType.Text);
            UpsertInputValue = UpsertInput.Parameters.Add("$input", SqliteType.Text);

            DeleteInput = Create(connection, "DELETE FROM instance_inputs WHERE instance_id = $id");
            DeleteInputId = DeleteInput.Parameters.Add("$id", SqliteType.Text);

            AppendHistory = Create(connection, "INSERT INTO history (instance_id, generation, block) VALUES ($id, $generation, $block)");
            AppendHistoryId = AppendHistory.Parameters.Add("$id", SqliteType.Text);
            AppendHistoryGeneration = AppendHistory.Parameters.Add("$generation", SqliteType.Integer);
            AppendHistoryBlock = AppendHistory.Parameters.Add("$block", SqliteType.Blob);

            DeleteHistory = Create(connection, "DELETE FROM history WHERE instance_id = $id");
            DeleteHistoryId = DeleteHistory.Parameters.Add("$id", SqliteType.Text);

            UpsertEntity = Create(connection,
                """
                INSERT INTO entities (instance_id, last_modified, record) VALUES ($id, $modified, $record)
                ON CONFLICT (instance_id) DO UPDATE SET last_modified = excluded.last_modified, record = excluded.record
                """);
            EntityId = UpsertEntity.Parameters.Add("$id", SqliteType.Text);
            EntityLastModified = UpsertEntity.Parameters.Add("$modified", SqliteType.Integer);
            EntityRecord = UpsertEntity.Parameters.Add("$record", SqliteType.Blob);

            DeleteEntity = Create(connection, "DELETE FROM entities WHERE instance_id = $id");
            DeleteEntityId = DeleteEntity.Parameters.Add("$id", SqliteType.Text);

            _all = [UpsertInstance, UpdateStatus, UpdateRecordOnly, Park, ParkTimer, UnparkTimer, DeleteInstance, UpsertInput, DeleteInput, AppendHistory, DeleteHistory, UpsertEntity, DeleteEntity];
            foreach (var command in _all) command.Prepare();
        }

        public SqliteCommand UpsertInstance { get; }
        public SqliteParameter InstanceId { get; }
        public SqliteParameter InstanceName { get; }
        public SqliteParameter InstanceStatus { get; }
        public SqliteParameter InstanceCreatedAt { get; }
        public SqliteParameter InstanceLastUpdatedAt { get; }
        public SqliteParameter InstanceCompletedAt { get; }
        public SqliteParameter InstanceParent { get; }
        public SqliteParameter InstanceGeneration { get; }
        public SqliteParameter InstanceRecord { get; }
        /// <summary>For a stored row whose id, name, creation time, parent and history generation are unchanged.</summary>
        public SqliteCommand UpdateStatus { get; }
        public SqliteParameter StatusId { get; }
        public SqliteParameter StatusStatus { get; }
        public SqliteParameter StatusLastUpdatedAt { get; }
        public SqliteParameter StatusCompletedAt { get; }
        public SqliteParameter StatusRecord { get; }

        /// <summary>For a stored row whose status (not a finished one) is also unchanged.</summary>
        public SqliteCommand UpdateRecordOnly { get; }
        /// <summary>Marks an unfinished instance parked (see <see cref="ParkedOffset"/>).</summary>
        public SqliteCommand Park { get; }
        public SqliteParameter ParkId { get; }
        public SqliteCommand ParkTimer { get; }
        public SqliteParameter ParkTimerId { get; }
        public SqliteParameter ParkTimerDue { get; }
        public SqliteCommand UnparkTimer { get; }
        public SqliteParameter UnparkTimerId { get; }
        public SqliteParameter RecordOnlyId { get; }
        public SqliteParameter RecordOnlyLastUpdatedAt { get; }
        public SqliteParameter RecordOnlyRecord { get; }
        public SqliteCommand DeleteInstance { get; }
        public SqliteParameter DeleteInstanceId { get; }
        public SqliteCommand UpsertInput { get; }
        public SqliteParameter UpsertInputId { get; }
        public SqliteParameter UpsertInputValue { get; }
        public SqliteCommand DeleteInput { get; }
        public SqliteParameter DeleteInputId { get; }
        public SqliteCommand AppendHistory { get; }
        public SqliteParameter AppendHistoryId { get; }
        public SqliteParameter AppendHistoryGeneration { get; }
        public SqliteParameter AppendHistoryBlock { get; }
        public SqliteCommand DeleteHistory { get; }
        public SqliteParameter DeleteHistoryId { get; }
        public SqliteCommand UpsertEntity { get; }
        public SqliteParameter EntityId { get; }
        public SqliteParameter EntityLastModified { get; }
        public SqliteParameter EntityRecord { get; }
        public SqliteCommand DeleteEntity { get; }
        public SqliteParameter DeleteEntityId { get; }

        public void Enlist(SqliteTransaction transaction)
        {
            foreach (var command in _all) command.Transaction = transaction;
        }

        public void Dispose()
        {
            foreach (var command in _all) command.Dispose();
        }

        static SqliteCommand Create(SqliteConnection connection, string sql)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            return command;
        }
    }
}

static partial class SqliteLogs
{
    [LoggerMessage(101, LogLevel.Information, "Created SQLite database '{Path}' (schema version {Version}).")]
    public static partial void Created(ILogger logger, string path, int version);

    [LoggerMessage(102, LogLevel.Warning, "Upgraded SQLite database '{Path}' from schema version {From} to {To}.")]
    public static partial void Upgraded(ILogger logger, string path, int from, int to);

    [LoggerMessage(103, LogLevel.Debug, "Opened SQLite database '{Path}' (schema version {Version}, synchronous={Synchronous}) in {Milliseconds} ms.")]
    public static partial void Opened(ILogger logger, string path, int version, string synchronous, long milliseconds);

    [LoggerMessage(104, LogLevel.Information, "Loaded {Instances} instances ({Blocks} history blocks) and {Entities} entities from '{Path}' in {Milliseconds} ms.")]
    public static partial void Loaded(ILogger logger, string path, int instances, int blocks, int entities, long milliseconds);
}
