using System.Runtime.CompilerServices;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using DurableTask.Scheduler.Storage.Sqlite;
using Google.Protobuf;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// Persisted formats must survive upgrades: the bytes of fixed records are pinned in <c>Golden/*.bin</c>, and a
/// database of every released SQLite schema version (<c>Golden/sqlite-v*.db</c>) must load with the current code.
/// </summary>
/// <remarks>
/// ONE-TIME GENERATOR: run with <c>UPDATE_GOLDEN=1</c> to (re)write the golden files of the CURRENT format, e.g. after
/// adding a record format version or a schema version. Never regenerate the files of a released version: a changed
/// golden file means stored data of that version would no longer be read the same way.
/// </remarks>
public sealed class GoldenFormatTests(ITestOutputHelper output)
{
    static bool Update => Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1";

    public static TheoryData<string> Records => new() { "instance-record-v1", "history-block-v1", "entity-record-v1" };

    [Theory]
    [MemberData(nameof(Records))]
    public void RecordBytes_MatchTheGoldenFile(string name)
    {
        var message = GoldenRecords.ByName(name);
        string path = Path.Combine(GoldenFolder(), name + ".bin");
        byte[] bytes = message.ToByteArray();
        if (Update)
        {
            File.WriteAllBytes(path, bytes);
            output.WriteLine($"UPDATE_GOLDEN: wrote {path}");
        }

        Assert.True(File.Exists(path), $"golden file {path} is missing (generate it once with UPDATE_GOLDEN=1)");
        byte[] golden = File.ReadAllBytes(path);
        Assert.Equal(golden, bytes);

        // And the golden bytes read back as the same record.
        Assert.Equal(message, message.Descriptor.Parser.ParseFrom(golden));
    }

    [Fact]
    public async Task EverySqliteSchemaVersion_LoadsWithTheCurrentCode()
    {
        string folder = GoldenFolder();
        if (Update) await WriteGoldenDatabaseAsync(Path.Combine(folder, $"sqlite-v{SqliteSchema.CurrentVersion}.db"));

        var files = Directory.GetFiles(folder, "sqlite-v*.db");
        Assert.Contains(Path.Combine(folder, "sqlite-v1.db"), files);
        foreach (string file in files)
        {
            using var temp = new TempFolder("golden");
            Directory.CreateDirectory(temp.Path);
            var provider = new SqliteStoreProvider(temp.Path, new SqliteStoreOptions());
            File.Copy(file, provider.PathOf("golden"));
            await using var store = provider.Open("golden");
            var hub = await store.LoadAsync(CancellationToken.None);

            var instances = hub.Instances.ToDictionary(i => i.Record.InstanceId);
            Assert.Equal(["golden-child", "golden-parent"], instances.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(GoldenRecords.Instance(), instances["golden-parent"].Record);
            Assert.Equal([GoldenRecords.Block(), GoldenRecords.Block(1)], instances["golden-parent"].History);
            Assert.Equal(GoldenRecords.Child(), instances["golden-child"].Record);
            Assert.Equal([GoldenRecords.Block(2)], instances["golden-child"].History);
            Assert.Equal(GoldenRecords.Entity(), Assert.Single(hub.Entities));
            Assert.Equal([GoldenRecords.Block(), GoldenRecords.Block(1)], await store.ReadHistoryAsync("golden-parent", CancellationToken.None));

            // The upgraded database counts what it holds, and takes new commits.
            Assert.Equal(1, (await store.CountInstancesAsync(new InstanceScan { Name = "HELLOCITIES" }, CancellationToken.None)).Sum());
            Assert.Equal(1, (await store.CountInstancesAsync(new InstanceScan { Name = "sayhello" }, CancellationToken.None)).Sum());
            Assert.Equal(new[] { GoldenRecords.Instance(), GoldenRecords.Child() }.Count(r => r.ParentInstanceId.Length == 0),
                (await store.CountInstancesAsync(new InstanceScan { TopLevelOnly = true }, CancellationToken.None)).Sum());
            await store.CommitAsync(new CommitBatch { DeletedInstances = { "golden-child" } }, CancellationToken.None);
            Assert.Single((await store.LoadAsync(CancellationToken.None)).Instances);
            Assert.Equal(1, (await store.CountInstancesAsync(new InstanceScan(), CancellationToken.None)).Sum());
            output.WriteLine($"{Path.GetFileName(file)}: loaded and upgraded to schema version {SqliteSchema.CurrentVersion}");
        }
    }

    static async Task WriteGoldenDatabaseAsync(string path)
    {
        using var temp = new TempFolder("golden-gen");
        var provider = new SqliteStoreProvider(temp.Path, new SqliteStoreOptions());
        await using (var store = provider.Open("golden"))
        {
            // The child's first generation is replaced, and a deleted instance leaves nothing behind.
            var first = new CommitBatch();
            first.Instances.Add(new InstanceChange { Record = GoldenRecords.Instance(), Append = GoldenRecords.Block() });
            first.Instances.Add(new InstanceChange { Record = GoldenRecords.Child(), Append = GoldenRecords.Block(1) });
            first.Instances.Add(new InstanceChange { Record = GoldenRecords.Child("golden-deleted"), Append = GoldenRecords.Block(1) });
            first.Entities.Add(GoldenRecords.Entity());
            await store.CommitAsync(first, CancellationToken.None);

            var second = new CommitBatch();
            second.Instances.Add(new InstanceChange { Record = GoldenRecords.Instance(), Append = GoldenRecords.Block(1) });
            second.Instances.Add(new InstanceChange { Record = GoldenRecords.Child(), Append = GoldenRecords.Block(2), ReplaceHistory = true });
            second.DeletedInstances.Add("golden-deleted");
            await store.CommitAsync(second, CancellationToken.None);
        }

        // Closing the last connection checkpointed the WAL into the database file.
        File.Copy(provider.PathOf("golden"), path, overwrite: true);
    }

    /// <summary>The folder of the golden files in the source tree.</summary>
    static string GoldenFolder([CallerFilePath] string source = "")
    {
        string beside = Path.Combine(Path.GetDirectoryName(source) ?? "", "Golden");
        if (Directory.Exists(beside)) return beside;

        // Built with mapped source paths: walk up from the test assembly to the repository.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "Scheduler.Tests", "Storage", "Golden");
            if (Directory.Exists(candidate)) return candidate;
        }

        throw new DirectoryNotFoundException("tests/Scheduler.Tests/Storage/Golden was not found.");
    }
}

/// <summary>Records with fixed content, every field set: the golden files hold exactly these.</summary>
static class GoldenRecords
{
    static readonly long T0 = new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc).Ticks;

    public static IMessage ByName(string name) => name switch
    {
        "instance-record-v1" => Instance(),
        "history-block-v1" => Block(),
        "entity-record-v1" => Entity(),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    public static InstanceRecord Instance() => new()
    {
        FormatVersion = 1,
        InstanceId = "golden-parent",
        Name = "HelloCities",
        Version = "1.0",
        ExecutionId = "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        Status = 1,
        CreatedAt = T0,
        LastUpdatedAt = T0 + 10,
        CompletedAt = T0 + 20,
        ScheduledStartAt = T0 + 5,
        Input = "\"Tokyo\"",
        Output = "\"Hello, Tokyo!\"",
        CustomStatus = "{\"step\":3}",
        Failure = ByteString.CopyFromUtf8("failure-details"),
        Tags = { ["team"] = "storage", ["env"] = "golden" },
        ParentInstanceId = "golden-grandparent",
        Inbox = { ByteString.CopyFromUtf8("inbox-event-1"), ByteString.CopyFromUtf8("inbox-event-2") },
        DeferredStart = ByteString.CopyFromUtf8("deferred-start"),
        ReplayRequested = true,
        TraceContext = ByteString.CopyFromUtf8("trace-context"),
        HistoryGeneration = 3,
        HistoryEventCount = 7,
    };

    public static InstanceRecord Child(string id = "golden-child") => new()
    {
        FormatVersion = 1,
        InstanceId = id,
        Name = "SayHello",
        ExecutionId = "00000000000000000000000000000001",
        Status = 0,
        CreatedAt = T0 + 1,
        LastUpdatedAt = T0 + 2,
        ParentInstanceId = "golden-parent",
        HistoryGeneration = 3,
    };

    public static HistoryBlock Block(int index = 0) => new()
    {
        FormatVersion = 1,
        Generation = 3,
        Events = { ByteString.CopyFromUtf8($"event-{index}-a"), ByteString.CopyFromUtf8($"event-{index}-b") },
    };

    public static EntityRecord Entity() => new()
    {
        FormatVersion = 1,
        InstanceId = "@counter@golden",
        State = "42",
        LastModified = T0 + 30,
        Queue =
        {
            new EntityMessageRecord
            {
                Event = ByteString.CopyFromUtf8("request-1"),
                ParentInstanceId = "golden-parent",
                ParentExecutionId = "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                Legacy = true,
            },
        },
        LockedBy = "golden-parent",
        LockCriticalSectionId = "critical-1",
        RecentRequestIds = { "request-0", "request-1" },
        Scheduled = { new EntityMessageRecord { Event = ByteString.CopyFromUtf8("request-2"), DueAt = T0 + 40 } },
    };
}
