using System.Diagnostics;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Redis;
using Google.Protobuf;
using StackExchange.Redis;
using Xunit.Abstractions;
using static DurableTask.Scheduler.Tests.Storage.StoreTestData;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>The Redis store against a real redis-server: the shared contract, plus its key layout.</summary>
public sealed class RedisStoreTests(RedisServerFixture redis, ITestOutputHelper output)
    : DurableStoreContractTests(output), IClassFixture<RedisServerFixture>
{
    RedisStoreProvider? _provider;
    ConnectionMultiplexer? _admin;

    RedisStoreProvider Provider => _provider ??= new RedisStoreProvider(redis.Server.ConnectionString, new RedisStoreOptions());

    protected override ITaskHubStore OpenStore(string hub) => Provider.Open(hub);

    public override async Task InitializeAsync() =>
        _admin = await ConnectionMultiplexer.ConnectAsync(redis.Server.ConnectionString + ",allowAdmin=true");

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (_provider is not null) await _provider.DisposeAsync();
        if (_admin is not null) await _admin.DisposeAsync();
    }

    IDatabase Admin => _admin!.GetDatabase();

    protected override async Task<IAsyncDisposable> BreakCommitsAsync(string hub)
    {
        // Out of memory: Redis refuses the writes while the transaction is queued, and EXEC then discards all of it.
        var server = _admin!.GetServer(redis.Server.ConnectionString);
        await server.ConfigSetAsync("maxmemory", "1");
        return new Undo(() => server.ConfigSet("maxmemory", "0"));
    }

    protected override Task DamageInstanceRecordAsync(string hub, string instanceId) =>
        Admin.HashSetAsync($"dts:{{{hub}}}:i:{instanceId}", "record", new byte[] { 0x12, 0xff, 0x01 });

    protected override async Task<(long RecordBytes, long InputChars)> StoredSizesAsync(string hub, string instanceId)
    {
        var fields = await Admin.HashGetAsync($"dts:{{{hub}}}:i:{instanceId}", ["record", "input"]);
        return (((byte[])fields[0]!).Length, ((string?)fields[1])?.Length ?? 0);
    }

    [Fact]
    public async Task KeyLayout_IsVersionThree()
    {
        string hub = NewHub();
        var store = Open(hub);
        var child = Instance("child", 2, parent: "root");
        var batch = Batch(Change(child, Block("child", 0)));
        batch.Entities.Add(Entity("@counter@x"));
        await store.CommitAsync(batch, CancellationToken.None);
        await store.CommitAsync(Batch(Change(child, Block("child", 1))), CancellationToken.None);

        string p = $"dts:{{{hub}}}:";
        var keys = _admin!.GetServer(redis.Server.ConnectionString).Keys(pattern: p + "*").Select(k => k.ToString()).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal([p + "commit", p + "e:@counter@x", p + "entities", p + "h:child", p + "i:child", p + "ids", p + "instances", p + "meta"], keys);
        Assert.Equal("3", (string?)await Admin.HashGetAsync(p + "meta", "layout"));
        Assert.Equal(0, await Admin.SortedSetScoreAsync(p + "ids", "child"));
        Assert.Equal(child.CreatedAt / TimeSpan.TicksPerMillisecond, await Admin.SortedSetScoreAsync(p + "instances", "child"));
        var fields = (await Admin.HashGetAllAsync(p + "i:child")).ToDictionary(e => e.Name.ToString(), e => e.Value);
        // The input has a field of its own, written with the whole hash; the record leaves it out.
        Assert.Equal(child.WithoutInput(), (byte[])fields["record"]!);
        Assert.Equal(child.Input, fields["input"].ToString());
        Assert.Equal(child.Status.ToString(), fields["status"].ToString());
        Assert.Equal("HelloCities", fields["name"].ToString());
        Assert.Equal(child.CreatedAt.ToString(), fields["created"].ToString());
        Assert.Equal(child.LastUpdatedAt.ToString(), fields["updated"].ToString());
        Assert.Equal("", fields["completed"].ToString());
        Assert.Equal("root", fields["parent"].ToString());
        Assert.Equal("0", fields["generation"].ToString());
        Assert.Equal(2, await Admin.ListLengthAsync(p + "h:child"));
        Assert.Equal(9, fields.Count);
        Assert.True(await Admin.SetContainsAsync(p + "entities", "@counter@x"));
        Assert.True(await Admin.SetContainsAsync("dts:hubs", hub));
        Assert.Contains(hub, await Provider.ListTaskHubsAsync(CancellationToken.None));

        // The hash tag puts a hub in one cluster slot, so MULTI/EXEC works on Redis Cluster.
        Assert.Single(keys.Select(k => _admin.HashSlot(k)).Distinct());
    }

    [Fact]
    public async Task LayoutOne_IsUpgradedOnLoad_AndItsInstancesCanBeScanned()
    {
        string hub = NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("b", 5), Block("b", 0)), Change(Instance("a", 1), Block("a", 0))), CancellationToken.None);
        // What a layout 1 scheduler left: no id index.
        string p = $"dts:{{{hub}}}:";
        await Admin.KeyDeleteAsync(p + "ids");
        await Admin.HashSetAsync(p + "meta", "layout", 1);

        var loaded = await Open(hub).LoadAsync(CancellationToken.None);
        Assert.Equal(2, loaded.Instances.Count);
        Assert.Equal("3", (string?)await Admin.HashGetAsync(p + "meta", "layout"));
        var ids = new List<string>();
        await foreach (var r in Open(hub).ScanInstancesAsync(new InstanceScan(), CancellationToken.None)) ids.Add(r.InstanceId);
        Assert.Equal(["a", "b"], ids);
    }

    [Fact]
    public async Task NewerLayoutVersion_IsRefused()
    {
        string hub = NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        await Admin.HashSetAsync($"dts:{{{hub}}}:meta", "layout", 7);

        var error = await Assert.ThrowsAsync<StoreCorruptedException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains("layout version 7", error.Message);
    }

    [Fact]
    public async Task HubNames_AreCaseInsensitive_AndPrefixesSeparateSchedulers()
    {
        string hub = "Mixed" + NewHub();
        await Open(hub).CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        Assert.Single((await Open(hub.ToUpperInvariant()).LoadAsync(CancellationToken.None)).Instances);

        await using var other = new RedisStoreProvider(redis.Server.ConnectionString, new RedisStoreOptions { KeyPrefix = "other" });
        await using var separate = other.Open(hub);
        Assert.Empty((await separate.LoadAsync(CancellationToken.None)).Instances);
    }

    [Fact]
    public async Task HubLease_IsExclusive_AndFencesTheCommitsOfAReplicaThatLostIt()
    {
        string hub = NewHub();
        IHubLeases leases = Provider;
        var ct = CancellationToken.None;
        var a = await leases.TryAcquireAsync(hub, "replica-a", "http://a:1 http://a:2", TimeSpan.FromSeconds(10), take: true, ct);
        Assert.NotNull(a);
        Assert.Equal("replica-a", a.ReplicaId);
        Assert.Equal("http://a:1 http://a:2", a.Endpoints);

        // Held: another replica sees the owner and cannot take it.
        var seen = await leases.TryAcquireAsync(hub, "replica-b", "http://b:1 http://b:2", TimeSpan.FromSeconds(10), take: true, ct);
        Assert.Equal(a, seen);
        await using var storeA = leases.OpenFenced(hub, a);
        await storeA.CommitAsync(Batch(Change(Instance("before"), Block("before", 0))), ct);

        // Replica A's last renewal gives the lease 100 ms; then A stops renewing (paused or cut off). Once the lease
        // expired, B takes it with a higher fence.
        Assert.True(await leases.RenewAsync(hub, a, TimeSpan.FromMilliseconds(100), ct));
        await Task.Delay(300);
        var b = await leases.TryAcquireAsync(hub, "replica-b", "http://b:1 http://b:2", TimeSpan.FromSeconds(10), take: true, ct);
        Assert.NotNull(b);
        Assert.Equal("replica-b", b.ReplicaId);
        Assert.True(b.Fence > a.Fence, $"fence {b.Fence} after {a.Fence}");
        Assert.False(await leases.RenewAsync(hub, a, TimeSpan.FromSeconds(10), ct));

        // A still believes it owns the hub: its commit is refused and nothing of it is applied.
        var refused = await Assert.ThrowsAsync<StoreFencedException>(() =>
            storeA.CommitAsync(Batch(Change(Instance("zombie"), Block("zombie", 0))), ct));
        Output.WriteLine(refused.Message);
        Assert.Contains(hub, refused.Message);
        await using var storeB = leases.OpenFenced(hub, b);
        await storeB.CommitAsync(Batch(Change(Instance("after"), Block("after", 0))), ct);
        var ids = (await Open(hub).LoadAsync(ct)).Instances.Select(i => i.Record.InstanceId).Order().ToList();
        Assert.Equal(["after", "before"], ids);

        // B restarted under the same name takes its own lease back at once, with a new fence against its old run.
        var restarted = await leases.TryAcquireAsync(hub, "replica-b", "http://b:3 http://b:4", TimeSpan.FromSeconds(10), take: true, ct);
        Assert.NotNull(restarted);
        Assert.True(restarted.Fence > b.Fence);
        await Assert.ThrowsAsync<StoreFencedException>(() => storeB.CommitAsync(Batch(Change(Instance("old-run"))), ct));

        // Released: free for anyone at once; without take, a free lease is only reported as free.
        await leases.ReleaseAsync(hub, restarted, ct);
        Assert.Null(await leases.TryAcquireAsync(hub, "replica-c", "http://c:1 http://c:2", TimeSpan.FromSeconds(10), take: false, ct));
        Assert.Equal("replica-c", (await leases.TryAcquireAsync(hub, "replica-c", "http://c:1 http://c:2", TimeSpan.FromSeconds(10), take: true, ct))?.ReplicaId);
    }
}

/// <summary>Redis going away and coming back; each test has a redis-server of its own.</summary>
public sealed class RedisOutageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task UnreachableRedis_FailsFast_AndTheStoreRecoversWhenItStarts()
    {
        await using var server = RedisServer.Reserve();
        await using var provider = new RedisStoreProvider(server.ConnectionString, new RedisStoreOptions());
        await using var store = provider.Open("outage");

        var sw = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None));
        output.WriteLine($"commit failed after {sw.ElapsedMilliseconds} ms: {error.Message}");
        Assert.Contains(server.ConnectionString, error.Message);
        sw.Restart();
        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.LoadAsync(CancellationToken.None));
        Assert.False(await store.IsHealthyAsync(CancellationToken.None));
        output.WriteLine($"a second call failed after {sw.ElapsedMilliseconds} ms");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "a call against an unreachable Redis should fail at once, not wait for a timeout");

        await server.StartAsync();
        sw.Restart();
        while (!await store.IsHealthyAsync(CancellationToken.None))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "the store did not reconnect within 30 s");
            await Task.Delay(100);
        }

        output.WriteLine($"healthy {sw.ElapsedMilliseconds} ms after redis-server started");
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        Assert.Single((await store.LoadAsync(CancellationToken.None)).Instances);
    }

    [Fact]
    public async Task PasswordProtectedRedis_NeedsThePasswordInTheConnectionString()
    {
        await using var server = await RedisServer.StartAsync("--requirepass", "s3cret-pass");

        await using (var wrong = new RedisStoreProvider(server.ConnectionString + ",password=wrong", new RedisStoreOptions()))
        await using (var store = wrong.Open("secured"))
        {
            var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.LoadAsync(CancellationToken.None));
            output.WriteLine(error.Message);
            Assert.False(await store.IsHealthyAsync(CancellationToken.None));
        }

        await using var right = new RedisStoreProvider(server.ConnectionString + ",password=s3cret-pass", new RedisStoreOptions());
        await using var secured = right.Open("secured");
        await secured.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        Assert.Single((await secured.LoadAsync(CancellationToken.None)).Instances);
        Assert.True(await secured.IsHealthyAsync(CancellationToken.None));
    }

    [Fact]
    public async Task KilledRedis_KeepsEveryAcknowledgedBatch_AndEachBatchWhole()
    {
        // With appendfsync everysec, Redis may hold back its append-only file for up to 2 s while a background fsync is
        // slow and answer meanwhile, so a kill can lose acknowledged writes; with always it writes before answering.
        // (flushAppendOnlyFile in https://github.com/redis/redis/blob/7.0/src/aof.c).
        await using var server = await RedisServer.StartAsync("--appendfsync", "always");
        await using var provider = new RedisStoreProvider(server.ConnectionString, new RedisStoreOptions());
        await using var store = provider.Open("killed");

        // Batch k appends block k to "seq" and creates "k-{k}": after a crash both or neither are there.
        int acknowledged = 0;
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            int failures = 0;
            for (int k = 0; !stop.IsCancellationRequested; k++)
            {
                var batch = Batch(Change(Instance("seq", k % 5), Block("seq", k)), Change(Instance($"k-{k}"), Block($"k-{k}", 0)));
                try
                {
                    await store.CommitAsync(batch, CancellationToken.None);
                    acknowledged = k + 1;
                }
                catch (StoreUnavailableException)
                {
                    failures++;
                    return failures;
                }
            }

            return failures;
        });

        await Task.Delay(400);
        await server.KillAsync();
        Assert.Equal(1, await writer.WaitAsync(TimeSpan.FromSeconds(30)));
        int acked = acknowledged;
        Assert.False(await store.IsHealthyAsync(CancellationToken.None));

        await server.StartAsync();
        var sw = Stopwatch.StartNew();
        while (!await store.IsHealthyAsync(CancellationToken.None))
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), "the store did not reconnect within 30 s");
            await Task.Delay(100);
        }

        var loaded = await store.LoadAsync(CancellationToken.None);
        var seq = loaded.Instances.Single(i => i.Record.InstanceId == "seq");
        int applied = seq.History.Count;
        output.WriteLine($"{acked} batches acknowledged before the kill; {applied} found after the restart");
        Assert.InRange(applied, acked, acked + 1);
        Assert.Equal(applied, loaded.Instances.Count(i => i.Record.InstanceId.StartsWith("k-", StringComparison.Ordinal)));
        for (int k = 0; k < applied; k++)
        {
            Assert.Contains(loaded.Instances, i => i.Record.InstanceId == $"k-{k}");
        }
    }

    [Fact]
    public async Task BatchWhoseAnswerWasLost_IsNotAppliedTwiceWhenRetried()
    {
        await using var server = await RedisServer.StartAsync();
        // Long enough for the first commit on a busy machine (it took 1 s once with 500 ms), short enough for the test.
        await using var provider = new RedisStoreProvider(server.ConnectionString + ",asyncTimeout=3000", new RedisStoreOptions());
        await using var store = provider.Open("uncertain");
        await store.CommitAsync(Batch(Change(Instance("a", 0), Block("a", 0))), CancellationToken.None);

        // Redis stops answering: the EXEC is sent, times out, and runs when Redis continues.
        var batch = Batch(Change(Instance("a", 1), Block("a", 1)));
        server.Pause();
        try
        {
            var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => store.CommitAsync(batch, CancellationToken.None));
            output.WriteLine(error.Message);
        }
        finally
        {
            server.Resume();
        }

        await using (var admin = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString))
        {
            Assert.Equal(2, await admin.GetDatabase().ListLengthAsync("dts:{uncertain}:h:a"));
        }

        // The retry of the same batch finds it applied; the next batch is applied as usual.
        await store.CommitAsync(batch, CancellationToken.None);
        Assert.Equal(2, (await store.LoadAsync(CancellationToken.None)).Instances.Single().History.Count);
        await store.CommitAsync(Batch(Change(Instance("a", 2), Block("a", 2))), CancellationToken.None);
        Assert.Equal(3, (await store.LoadAsync(CancellationToken.None)).Instances.Single().History.Count);
    }

    [Fact]
    public async Task PausedRedis_IsUnhealthy_UntilItAnswersAgain()
    {
        await using var server = await RedisServer.StartAsync();
        await using var provider = new RedisStoreProvider(server.ConnectionString, new RedisStoreOptions());
        await using var store = provider.Open("paused");
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        Assert.True(await store.IsHealthyAsync(CancellationToken.None));

        server.Pause();
        try
        {
            var sw = Stopwatch.StartNew();
            Assert.False(await store.IsHealthyAsync(CancellationToken.None));
            output.WriteLine($"health probe of a paused Redis answered false after {sw.ElapsedMilliseconds} ms");

            // A commit made during the pause waits for Redis and completes when it answers.
            var pending = store.CommitAsync(Batch(Change(Instance("b"), Block("b", 0))), CancellationToken.None);
            await Task.Delay(1500);
            Assert.False(pending.IsCompleted);
            server.Resume();
            await pending.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            server.Resume();
        }

        Assert.True(await store.IsHealthyAsync(CancellationToken.None));
        Assert.Equal(2, (await store.LoadAsync(CancellationToken.None)).Instances.Count);
    }
}
