using System.Diagnostics;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using DurableTask.Scheduler.Storage.Redis;
using DurableTask.Scheduler.Storage.Sqlite;
using Google.Protobuf;
using StackExchange.Redis;
using Xunit.Abstractions;
using static DurableTask.Scheduler.Tests.Storage.StoreTestData;

namespace DurableTask.Scheduler.Tests.Storage;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StoreBenchmarkCollection
{
    public const string Name = "Store benchmarks";
}

/// <summary>
/// Commit throughput and footprint of the durable stores with records the size of a five-city sequence's.
/// Prints numbers; asserts only that the work was done.
/// </summary>
[Collection(StoreBenchmarkCollection.Name)]
public sealed class StoreBenchmarks(ITestOutputHelper output)
{
    static readonly TimeSpan Duration = TimeSpan.FromSeconds(1.5);

    [Fact]
    public async Task Sqlite_CommitThroughput()
    {
        using var folder = new TempFolder("bench");
        var normal = new SqliteStoreProvider(folder.Path, new SqliteStoreOptions());
        var full = new SqliteStoreProvider(folder.Path, new SqliteStoreOptions { Synchronous = "Full" });
        PrintSizes();
        foreach (int size in new[] { 1, 10, 100 })
        {
            await using var store = normal.Open($"normal-{size}");
            await MeasureAsync($"sqlite synchronous=NORMAL", store, size);
        }

        foreach (int size in new[] { 1, 100 })
        {
            await using var store = full.Open($"full-{size}");
            await MeasureAsync($"sqlite synchronous=FULL  ", store, size);
        }

        await using (var store = normal.Open("footprint"))
        {
            await FillCompletedAsync(store, 10_000);
        }

        long bytes = new FileInfo(normal.PathOf("footprint")).Length;
        output.WriteLine($"sqlite footprint: {bytes / 10_000.0:N0} bytes of database file per completed five-city instance (10,000 instances, {bytes / 1e6:N1} MB)");
        await using (var store = normal.Open("footprint"))
        {
            var sw = Stopwatch.StartNew();
            var hub = await store.LoadAsync(CancellationToken.None);
            output.WriteLine($"sqlite load of 10,000 completed instances (60,000 history blocks): {sw.ElapsedMilliseconds} ms");
            Assert.Equal(10_000, hub.Instances.Count);
        }
    }

    [Fact]
    public async Task Redis_CommitThroughput()
    {
        await using var server = await RedisServer.StartAsync();
        await using var provider = new RedisStoreProvider(server.ConnectionString, new RedisStoreOptions());
        PrintSizes();
        foreach (int size in new[] { 1, 10, 100 })
        {
            await using var store = provider.Open($"bench-{size}");
            await MeasureAsync("redis (appendonly, everysec)", store, size);
        }

        await using var admin = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString + ",allowAdmin=true");
        var redis = admin.GetServer(server.ConnectionString);
        await redis.FlushAllDatabasesAsync();
        long before = UsedMemory(await redis.InfoAsync("memory"));
        await using (var store = provider.Open("footprint"))
        {
            await FillCompletedAsync(store, 10_000);
            long after = UsedMemory(await redis.InfoAsync("memory"));
            output.WriteLine($"redis footprint: {(after - before) / 10_000.0:N0} bytes of Redis memory per completed five-city instance (10,000 instances, {(after - before) / 1e6:N1} MB)");
            var sw = Stopwatch.StartNew();
            var hub = await store.LoadAsync(CancellationToken.None);
            output.WriteLine($"redis load of 10,000 completed instances (60,000 history blocks): {sw.ElapsedMilliseconds} ms");
            Assert.Equal(10_000, hub.Instances.Count);
        }
    }

    /// <summary>An order-like JSON input and a greeting with some detail: a change of about 1.5 KB.</summary>
    static readonly string Input = "{\"customer\":\"contoso\",\"cities\":[\"Tokyo\",\"Seattle\",\"London\",\"Cairo\",\"Lima\"],\"note\":\"" + new string('n', 420) + "\"}";
    static readonly string Result = "{\"greeting\":\"Hello, Seattle!\",\"detail\":\"" + new string('d', 360) + "\"}";

    static InstanceRecord SizedInstance(string id, int step) => Instance(id, step, input: Input);

    static HistoryBlock SizedBlock(string id, int step) => Block(id, step, result: Result);

    void PrintSizes()
    {
        var record = SizedInstance("hello-cities-0001", 2);
        var block = SizedBlock("hello-cities-0001", 2);
        output.WriteLine($"one instance change: record {record.CalculateSize()} bytes + history block {block.CalculateSize()} bytes");
    }

    /// <summary>Sequential commits (as the group commit makes them) of <paramref name="size"/> instance changes each, over a pool of 2,000 instances.</summary>
    async Task MeasureAsync(string label, ITaskHubStore store, int size)
    {
        const int Pool = 2000;
        var records = Enumerable.Range(0, Pool).Select(i => SizedInstance($"hello-cities-{i:D5}", 1)).ToArray();
        var blocks = Enumerable.Range(0, 5).Select(s => SizedBlock("hello-cities", s)).ToArray();
        int next = 0, commits = 0;
        var latencies = new List<double>();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < Duration)
        {
            var batch = new CommitBatch();
            for (int i = 0; i < size; i++, next++)
            {
                batch.Instances.Add(new InstanceChange { Record = records[next % Pool], Append = blocks[next / Pool % 5] });
            }

            long start = Stopwatch.GetTimestamp();
            await store.CommitAsync(batch, CancellationToken.None);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            commits++;
        }

        double seconds = sw.Elapsed.TotalSeconds;
        latencies.Sort();
        output.WriteLine($"{label}, batches of {size,3}: {commits / seconds,8:N0} commits/s = {commits * size / seconds,8:N0} instance changes/s " +
                         $"(latency p50 {latencies[latencies.Count / 2]:F2} ms, p99 {latencies[(int)(latencies.Count * 0.99)]:F2} ms)");
        Assert.True(commits > 0);
    }

    /// <summary>Instances as a completed five-city sequence leaves them: six history blocks each.</summary>
    static async Task FillCompletedAsync(ITaskHubStore store, int count)
    {
        for (int start = 0; start < count; start += 500)
        {
            for (int step = 0; step <= 5; step++)
            {
                var batch = new CommitBatch();
                for (int i = start; i < Math.Min(count, start + 500); i++)
                {
                    string id = $"done-{i:D6}";
                    batch.Instances.Add(new InstanceChange { Record = SizedInstance(id, step), Append = SizedBlock(id, step) });
                }

                await store.CommitAsync(batch, CancellationToken.None);
            }
        }
    }

    static long UsedMemory(IGrouping<string, KeyValuePair<string, string>>[] info) =>
        long.Parse(info.SelectMany(g => g).First(p => p.Key == "used_memory").Value);
}
