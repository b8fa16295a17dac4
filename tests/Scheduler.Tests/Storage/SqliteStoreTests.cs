using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Sqlite;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using static DurableTask.Scheduler.Tests.Storage.StoreTestData;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>The SQLite store: the shared contract, plus files that are damaged, foreign, newer, in use or torn by a crash.</summary>
public sealed class SqliteStoreTests(ITestOutputHelper output) : DurableStoreContractTests(output)
{
    readonly TempFolder _data = new("sqlite");
    SqliteStoreProvider? _provider;

    SqliteStoreProvider Provider => _provider ??= new SqliteStoreProvider(_data.Path, new SqliteStoreOptions());

    protected override ITaskHubStore OpenStore(string hub) => Provider.Open(hub);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _data.Dispose();
    }

    /// <summary>A stored row is updated in place; should it be missing after all, the change still writes it whole.</summary>
    [Fact]
    public async Task ChangeMarkedUnchanged_ForARowNotStored_IsWrittenWhole()
    {
        string hub = NewHub();
        var store = Open(hub);
        var running = Instance("gone", 1);
        var finished = Instance("gone-too", 5);
        await store.CommitAsync(Batch(
            new InstanceChange { Record = running, Append = Block("gone", 0), IndexUnchanged = true, StatusUnchanged = true },
            new InstanceChange { Record = finished, Append = Block("gone-too", 0), IndexUnchanged = true }), CancellationToken.None);

        var loaded = await ReopenAndLoadAsync(hub, store);
        Assert.Equal(running, loaded.Instances.Single(i => i.Record.InstanceId == "gone").Record);
        Assert.Equal(finished, loaded.Instances.Single(i => i.Record.InstanceId == "gone-too").Record);
        AssertHistory([Block("gone", 0)], loaded.Instances.Single(i => i.Record.InstanceId == "gone").History);
    }

    protected override Task<(long RecordBytes, long InputChars)> StoredSizesAsync(string hub, string instanceId)
    {
        using var connection = Connect(Provider.PathOf(hub));
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT length(record), length(input) FROM instances JOIN instance_inputs USING (instance_id) WHERE instance_id = $id";
        command.Parameters.AddWithValue("$id", instanceId);
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        return Task.FromResult((reader.GetInt64(0), reader.GetInt64(1)));
    }

    protected override Task<IAsyncDisposable> BreakCommitsAsync(string hub)
    {
        // A trigger refuses entity '@boom@...' after the batch's instance rows were written.
        Execute(Provider.PathOf(hub),
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON entities WHEN NEW.instance_id LIKE '@boom@%' " +
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
        return Task.FromResult<IAsyncDisposable>(new Undo(() => Execute(Provider.PathOf(hub), "DROP TRIGGER refuse_boom")));
    }

    protected override Task DamageInstanceRecordAsync(string hub, string instanceId)
    {
        // Field 2 (instance_id) claims 255 bytes that are not there.
        Execute(Provider.PathOf(hub), $"UPDATE instances SET record = x'12ff01' WHERE instance_id = '{instanceId}'");
        return Task.CompletedTask;
    }

    [Fact]
    public async Task GarbageFile_IsReportedAsDamagedWithItsPath()
    {
        string hub = NewHub();
        Directory.CreateDirectory(_data.Path);
        var garbage = new byte[8192];
        new Random(7).NextBytes(garbage);
        await File.WriteAllBytesAsync(Provider.PathOf(hub), garbage);

        var error = await Assert.ThrowsAsync<StoreCorruptedException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains(Provider.PathOf(hub), error.Message);

        // The file is left as it was, for inspection.
        Assert.Equal(garbage, await File.ReadAllBytesAsync(Provider.PathOf(hub)));
    }

    [Fact]
    public async Task ForeignSqliteDatabase_IsRefused()
    {
        string hub = NewHub();
        Directory.CreateDirectory(_data.Path);
        Execute(Provider.PathOf(hub), "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");

        var error = await Assert.ThrowsAsync<StoreCorruptedException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains(Provider.PathOf(hub), error.Message);
        Assert.Contains("not a task hub database", error.Message);
    }

    [Fact]
    public async Task NewerSchemaVersion_IsRefused()
    {
        string hub = NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        await store.DisposeAsync();
        Execute(Provider.PathOf(hub), "UPDATE schema_version SET version = 99");

        var error = await Assert.ThrowsAsync<StoreCorruptedException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains("schema version 99", error.Message);
        Assert.Contains("newer scheduler", error.Message);
        Assert.Contains(Provider.PathOf(hub), error.Message);
    }

    [Fact]
    public async Task DatabaseInUse_IsRefusedToASecondStore()
    {
        string hub = NewHub();
        var first = Open(hub);
        await first.LoadAsync(CancellationToken.None);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains("in use", error.Message);

        // Once the first one is closed the database can be opened again.
        await first.DisposeAsync();
        await Open(hub).LoadAsync(CancellationToken.None);
    }

    [Fact]
    public async Task TornLastTransaction_LoadsEveryEarlierBatch()
    {
        string hub = NewHub();
        var store = Open(hub);
        var records = new List<DurableTask.Scheduler.Storage.Records.InstanceRecord>();
        for (int step = 0; step < 3; step++)
        {
            var record = Instance("seq", step);
            records.Add(record);
            await store.CommitAsync(Batch(Change(record, Block("seq", step)), Change(Instance($"batch-{step}"), null)), CancellationToken.None);
        }

        string wal = Provider.PathOf(hub) + "-wal";
        long committed = new FileInfo(wal).Length;

        // A fourth batch of several pages; a crash may stop its write anywhere.
        var last = Batch(Change(Instance("seq", 3, input: new string('y', 40_000)), Block("seq", 3)), Change(Instance("batch-3"), null));
        await store.CommitAsync(last, CancellationToken.None);
        long full = new FileInfo(wal).Length;
        Assert.True(full > committed + 8 * 4096, $"the last batch should span several WAL frames ({committed} -> {full} bytes)");

        // Crash images: the database file plus the WAL as far as the write got.
        byte[] db = await File.ReadAllBytesAsync(Provider.PathOf(hub));
        byte[] walBytes = await File.ReadAllBytesAsync(wal);
        await store.DisposeAsync();

        var cuts = new List<long> { committed, committed + 1, committed + 24 + 4096, (committed + full) / 2, full - 4096 - 24, full - 1 };
        foreach (long cut in cuts)
        {
            using var crash = new TempFolder("torn");
            Directory.CreateDirectory(crash.Path);
            var provider = new SqliteStoreProvider(crash.Path, new SqliteStoreOptions());
            await File.WriteAllBytesAsync(provider.PathOf(hub), db);
            await File.WriteAllBytesAsync(provider.PathOf(hub) + "-wal", walBytes.AsSpan(0, (int)cut).ToArray());
            await using var reopened = provider.Open(hub);
            var loaded = await reopened.LoadAsync(CancellationToken.None);

            Assert.Equal(["batch-0", "batch-1", "batch-2", "seq"], loaded.Instances.Select(i => i.Record.InstanceId).Order(StringComparer.Ordinal));
            var seq = loaded.Instances.Single(i => i.Record.InstanceId == "seq");
            Assert.Equal(records[2], seq.Record);
            Assert.Equal(3, seq.History.Count);
        }

        // The whole WAL holds the fourth batch too.
        using (var whole = new TempFolder("whole"))
        {
            Directory.CreateDirectory(whole.Path);
            var provider = new SqliteStoreProvider(whole.Path, new SqliteStoreOptions());
            await File.WriteAllBytesAsync(provider.PathOf(hub), db);
            await File.WriteAllBytesAsync(provider.PathOf(hub) + "-wal", walBytes);
            await using var reopened = provider.Open(hub);
            var loaded = await reopened.LoadAsync(CancellationToken.None);
            Assert.Equal(5, loaded.Instances.Count);
            Assert.Equal(4, loaded.Instances.Single(i => i.Record.InstanceId == "seq").History.Count);
        }

        Output.WriteLine($"WAL after 3 batches: {committed} bytes, after the 4th: {full} bytes; {cuts.Count} torn images all loaded batches 1-3");
    }

    [Fact]
    public async Task QueryColumns_AreStoredAndIndexed()
    {
        string hub = NewHub();
        var store = Open(hub);
        var running = Instance("child", 2, parent: "root");
        var done = Instance("root", 5, name: "Parent");
        await store.CommitAsync(Batch(Change(running, Block("child", 0)), Change(done, Block("root", 0))), CancellationToken.None);
        await store.DisposeAsync();

        using var connection = Connect(Provider.PathOf(hub));
        using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT instance_id, name, status, created_at, last_updated_at, completed_at, parent_instance_id, history_generation FROM instances ORDER BY instance_id";
            using var reader = command.ExecuteReader();
            Assert.True(reader.Read());
            Assert.Equal(("child", "HelloCities", running.Status, running.CreatedAt, running.LastUpdatedAt, true, "root"),
                (reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt64(3), reader.GetInt64(4), reader.IsDBNull(5), reader.GetString(6)));
            Assert.True(reader.Read());
            Assert.Equal(("root", "Parent", done.Status, done.CompletedAt, true),
                (reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetInt64(5), reader.IsDBNull(6)));
        }

        foreach (var (query, index) in new[]
        {
            ("SELECT instance_id FROM instances WHERE status = 1 ORDER BY created_at", "instances_status"),
            ("SELECT status, count(*) FROM instances WHERE instance_id >= 'c' AND instance_id < 'd' AND +status IN (1, 101) GROUP BY status", "sqlite_autoindex_instances_1"),
            ("SELECT status, sum(n) FROM instance_counts WHERE name = 'Parent' GROUP BY status", "instance_counts"),
            ("SELECT instance_id FROM instances WHERE created_at > 5", "instances_created_at"),
            ("SELECT instance_id FROM instances WHERE completed_at < 5", "instances_completed_at"),
            ("SELECT instance_id FROM instances WHERE parent_instance_id = 'root'", "instances_parent"),
        })
        {
            using var plan = connection.CreateCommand();
            plan.CommandText = "EXPLAIN QUERY PLAN " + query;
            string detail = string.Join(" | ", ReadColumn(plan, 3));
            Assert.Contains(index, detail);
        }
    }

    [Fact]
    public async Task HubNames_AreCaseInsensitive()
    {
        string hub = "Mixed" + NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        await store.DisposeAsync();

        Assert.True(File.Exists(Path.Combine(_data.Path, hub.ToLowerInvariant() + ".db")));
        Assert.Single((await Open(hub.ToUpperInvariant()).LoadAsync(CancellationToken.None)).Instances);
        Assert.Contains(hub.ToLowerInvariant(), Provider.ListTaskHubs());
    }

    [Fact]
    public async Task FullSynchronousMode_AndIntegrityCheck_Work()
    {
        using var folder = new TempFolder("full");
        var provider = new SqliteStoreProvider(folder.Path, new SqliteStoreOptions { Synchronous = "full", IntegrityCheckOnOpen = true });
        string hub = NewHub();
        await using (var store = provider.Open(hub))
        {
            await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        }

        await using var reopened = provider.Open(hub);
        Assert.Single((await reopened.LoadAsync(CancellationToken.None)).Instances);
    }

    [Fact]
    public void UnknownSynchronousMode_IsRefusedAtStart()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new SqliteStoreProvider(_data.Path, new SqliteStoreOptions { Synchronous = "sometimes" }));
        Assert.Contains("Scheduler:Sqlite:Synchronous", error.Message);
    }

    internal static SqliteConnection Connect(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    internal static void Execute(string path, string sql)
    {
        using var connection = Connect(path);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    static List<string> ReadColumn(SqliteCommand command, int column)
    {
        var values = new List<string>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) values.Add(reader.GetString(column));
        return values;
    }
}

/// <summary>Undoes a change to a backend when disposed.</summary>
sealed class Undo(Action undo) : IAsyncDisposable
{
    public ValueTask DisposeAsync()
    {
        undo();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A fresh folder under the system temp folder, deleted on dispose.</summary>
sealed class TempFolder(string prefix) : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"dts-{prefix}-{Guid.NewGuid():N}");

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
