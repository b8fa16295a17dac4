using System.Diagnostics;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.Records;
using Xunit.Abstractions;
using static DurableTask.Scheduler.Tests.Storage.StoreTestData;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// The store contract (<see cref="ITaskHubStore"/>), run against every store: what holds for any store here,
/// what holds for durable stores in <see cref="DurableStoreContractTests"/>. Every test uses a task hub of its own.
/// </summary>
public abstract class StoreContractTests(ITestOutputHelper output) : IAsyncLifetime
{
    readonly List<ITaskHubStore> _opened = new();

    protected ITestOutputHelper Output { get; } = output;

    /// <summary>Opens the store of <paramref name="hub"/> (again, after a dispose, to read what was persisted).</summary>
    protected abstract ITaskHubStore OpenStore(string hub);

    protected abstract bool ExpectDurable { get; }

    protected ITaskHubStore Open(string hub)
    {
        var store = OpenStore(hub);
        _opened.Add(store);
        return store;
    }

    protected static string NewHub() => "s" + Guid.NewGuid().ToString("N")[..12];

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened) await store.DisposeAsync();
    }

    [Fact]
    public async Task OpenStore_IsHealthyAndSaysWhetherItIsDurable()
    {
        var store = Open(NewHub());
        Assert.Equal(ExpectDurable, store.IsDurable);
        Assert.True(await store.IsHealthyAsync(CancellationToken.None));
    }

    [Fact]
    public async Task NewHub_LoadsEmpty()
    {
        var store = Open(NewHub());
        var hub = await store.LoadAsync(CancellationToken.None);
        Assert.Empty(hub.Instances);
        Assert.Empty(hub.Entities);
        Assert.Empty(await store.ReadHistoryAsync("nobody", CancellationToken.None));
    }

    [Fact]
    public async Task Commits_OfEmptyAndFullBatches_Succeed()
    {
        var store = Open(NewHub());
        await store.CommitAsync(new CommitBatch(), CancellationToken.None);
        var batch = Batch(Change(Instance("a"), Block("a", 0)));
        batch.Entities.Add(Entity("@counter@x"));
        batch.DeletedInstances.Add("gone");
        batch.DeletedEntities.Add("@counter@gone");
        await store.CommitAsync(batch, CancellationToken.None);
    }

    [Fact]
    public async Task Dispose_TwiceIsHarmless()
    {
        var store = OpenStore(NewHub());
        await store.LoadAsync(CancellationToken.None);
        await store.DisposeAsync();
        await store.DisposeAsync();
    }
}

/// <summary>The contract of stores whose commits survive a restart.</summary>
public abstract class DurableStoreContractTests(ITestOutputHelper output) : StoreContractTests(output)
{
    protected override bool ExpectDurable => true;

    /// <summary>Changes the backend so that the next commit of <paramref name="hub"/> fails part-way; disposing the result undoes it.</summary>
    protected abstract Task<IAsyncDisposable> BreakCommitsAsync(string hub);

    /// <summary>Overwrites the stored record of <paramref name="instanceId"/> with bytes that are not a record.</summary>
    protected abstract Task DamageInstanceRecordAsync(string hub, string instanceId);

    protected async Task<StoredHub> ReopenAndLoadAsync(string hub, ITaskHubStore current) => (await ReopenAsync(hub, current)).Loaded;

    /// <summary>Closes <paramref name="current"/>, opens the hub again and loads it; the new store stays open for more commits.</summary>
    protected async Task<(ITaskHubStore Store, StoredHub Loaded)> ReopenAsync(string hub, ITaskHubStore current)
    {
        await current.DisposeAsync();
        var store = Open(hub);
        return (store, await store.LoadAsync(CancellationToken.None));
    }

    /// <summary>The bytes of the stored record of <paramref name="instanceId"/> and the characters of the input kept apart from it.</summary>
    protected abstract Task<(long RecordBytes, long InputChars)> StoredSizesAsync(string hub, string instanceId);

    /// <summary>
    /// An instance's input is written when the instance is written whole, apart from its record; the updates while it
    /// stays the same leave it out, so a large input is not rewritten with every change, and every read puts it back.
    /// After a restart the loaded instance says so, and its updates go on leaving the input out.
    /// </summary>
    [Fact]
    public async Task LargeInput_IsWrittenWhenTheInstanceIsWrittenWhole_AndEveryReadHasIt()
    {
        string hub = NewHub();
        var store = Open(hub);
        string input = "\"" + new string('x', 100_000) + "\"";
        var record = Instance("big", 0, input: input);
        await store.CommitAsync(Batch(Change(record, Block("big", 0))), CancellationToken.None);
        for (int step = 1; step <= 3; step++)
        {
            record = Instance("big", step, input: input);
            await store.CommitAsync(Batch(Update(record, Block("big", step), inputUnchanged: true)), CancellationToken.None);
        }

        var (recordBytes, inputChars) = await StoredSizesAsync(hub, "big");
        Assert.True(recordBytes < 2_000, $"the record of a running instance should leave its input out: {recordBytes} bytes");
        Assert.Equal(input.Length, inputChars);

        var read = (await store.ReadInstanceAsync("big", CancellationToken.None))!;
        Assert.Equal(record, read.Record);
        Assert.True(read.InputStoredApart);
        Assert.Equal(record, Assert.Single(await ToListAsync(store.ScanInstancesAsync(new InstanceScan(), CancellationToken.None))));
        (store, var hubState) = await ReopenAsync(hub, store);
        var loaded = Assert.Single(hubState.Instances);
        Assert.Equal(record, loaded.Record);
        Assert.True(loaded.InputStoredApart);

        // An update whose input is not the stored one carries it in the record, which wins over the one kept apart.
        var changed = Instance("big", 4, input: "\"Lima\"");
        await store.CommitAsync(Batch(Update(changed, Block("big", 4), inputUnchanged: false)), CancellationToken.None);
        (store, hubState) = await ReopenAsync(hub, store);
        loaded = Assert.Single(hubState.Instances);
        Assert.Equal(changed, loaded.Record);
        Assert.False(loaded.InputStoredApart);

        // A whole write without an input (a new execution, say) leaves no earlier input behind.
        var next = Instance("big", 0);
        next.ClearInput();
        next.HistoryGeneration = 1;
        await store.CommitAsync(Batch(Change(next, Block("big", 0, generation: 1), replaceHistory: true)), CancellationToken.None);
        var reloaded = Assert.Single((await ReopenAndLoadAsync(hub, store)).Instances);
        Assert.Equal(next, reloaded.Record);
        Assert.False(reloaded.Record.HasInput);
        Assert.True(reloaded.InputStoredApart);
    }

    static InstanceChange Update(InstanceRecord record, HistoryBlock append, bool inputUnchanged) =>
        new() { Record = record, Append = append, IndexUnchanged = true, StatusUnchanged = true, InputUnchanged = inputUnchanged };

    static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    [Fact]
    public async Task InstancesAndHistory_RoundTripAcrossCommits()
    {
        string hub = NewHub();
        var store = Open(hub);
        var a0 = Instance("a", 0);
        var b0 = Instance("b", 0, parent: "a");
        await store.CommitAsync(Batch(Change(a0, Block("a", 0)), Change(b0, Block("b", 0))), CancellationToken.None);
        var a1 = Instance("a", 1);
        await store.CommitAsync(Batch(Change(a1, Block("a", 1))), CancellationToken.None);
        var a5 = Instance("a", 5);
        var b1 = Instance("b", 1, parent: "a");
        await store.CommitAsync(Batch(Change(a5, Block("a", 2)), Change(b1)), CancellationToken.None);

        var expected = new Dictionary<string, (InstanceRecord, HistoryBlock[])>
        {
            ["a"] = (a5, [Block("a", 0), Block("a", 1), Block("a", 2)]),
            ["b"] = (b1, [Block("b", 0)]),
        };
        AssertHub(expected, await store.LoadAsync(CancellationToken.None));
        AssertHistory(expected["a"].Item2, await store.ReadHistoryAsync("a", CancellationToken.None));
        AssertHistory(expected["b"].Item2, await store.ReadHistoryAsync("b", CancellationToken.None));
        AssertHub(expected, await ReopenAndLoadAsync(hub, store));
    }

    [Fact]
    public async Task ReadInstance_ReturnsTheRecordWithItsCurrentHistory_OrNull()
    {
        string hub = NewHub();
        var store = Open(hub);
        var a1 = Instance("a", 1);
        await store.CommitAsync(Batch(Change(Instance("a", 0), Block("a", 0)), Change(Instance("b", 5), Block("b", 0))), CancellationToken.None);
        await store.CommitAsync(Batch(Change(a1, Block("a", 1))), CancellationToken.None);

        var read = await store.ReadInstanceAsync("a", CancellationToken.None);
        Assert.NotNull(read);
        Assert.Equal(a1, read.Record);
        AssertHistory([Block("a", 0), Block("a", 1)], read.History);
        Assert.Null(await store.ReadInstanceAsync("nobody", CancellationToken.None));

        await store.CommitAsync(new CommitBatch { DeletedInstances = { "a" } }, CancellationToken.None);
        Assert.Null(await store.ReadInstanceAsync("a", CancellationToken.None));
    }

    [Fact]
    public async Task ScanInstances_PagesInIdOrder_WithCursorPrefixAndStatuses()
    {
        string hub = NewHub();
        var store = Open(hub);
        // 600 instances (more than one page of any store), every third one finished, ids inserted out of order;
        // two ids with characters whose UTF-16 order differs from their code point order.
        var ids = Enumerable.Range(0, 600).Select(i => $"i-{(i * 7919) % 600:D4}").ToList();
        ids.Add("z-\uFF21");
        ids.Add("z-\U0001F600");
        var batch = new CommitBatch();
        foreach (var (id, i) in ids.Select((id, i) => (id, i))) batch.Instances.Add(Change(Instance(id, i % 3 == 0 ? 5 : 1)));
        await store.CommitAsync(batch, CancellationToken.None);

        async Task<List<InstanceRecord>> ScanAsync(InstanceScan scan, int take = int.MaxValue)
        {
            var list = new List<InstanceRecord>();
            await foreach (var r in store.ScanInstancesAsync(scan, CancellationToken.None))
            {
                list.Add(r);
                if (list.Count == take) break;
            }

            return list;
        }

        var expected = ids.Order(InstanceIdOrder.Instance).ToList();
        Assert.Equal("z-\uFF21", expected[^2]);
        Assert.Equal(expected, (await ScanAsync(new InstanceScan())).Select(r => r.InstanceId));
        Assert.Equal(expected.Where(id => InstanceIdOrder.Instance.Compare(id, "i-0299") > 0),
            (await ScanAsync(new InstanceScan(After: "i-0299"))).Select(r => r.InstanceId));
        Assert.Equal(expected.Where(id => id.StartsWith("i-01", StringComparison.Ordinal)),
            (await ScanAsync(new InstanceScan(Prefix: "i-01"))).Select(r => r.InstanceId));
        Assert.Equal(["i-0150", "i-0151"], (await ScanAsync(new InstanceScan(After: "i-0149", Prefix: "i-01"), take: 2)).Select(r => r.InstanceId));
        var finished = await ScanAsync(new InstanceScan(Statuses: FinishedStatuses.Values));
        Assert.Equal(expected.Where(id => ids.IndexOf(id) % 3 == 0), finished.Select(r => r.InstanceId));
        Assert.Empty(await ScanAsync(new InstanceScan(After: expected[^1])));
    }

    /// <summary>
    /// A scan narrowed by name (ignoring case), creation and completion times and parent returns exactly the records
    /// <see cref="InstanceScan.Matches"/> accepts, in id order; a count returns how many there are per status; a prefix
    /// whose last character is the last of its UTF-16 range still bounds the scan correctly.
    /// </summary>
    [Fact]
    public async Task ScanAndCount_NarrowByNameVersionTimesAndParent()
    {
        string hub = NewHub();
        var store = Open(hub);
        string[] names = ["Approve", "approve", "APPROVE", "Ship", "\u00c4rger"];
        var records = new List<InstanceRecord>();
        for (int i = 0; i < 700; i++)
        {
            var record = Instance($"n-{(i * 7919) % 700:D4}", i % 4 == 0 ? 5 : 1, names[i % names.Length], parent: i % 6 == 0 ? "root" : null);
            record.CreatedAt = Epoch.AddMinutes(i).Ticks;
            if (record.Status == (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Completed) record.CompletedAt = Epoch.AddMinutes(i + 30).Ticks;
            if (i % 3 != 0) record.Version = i % 3 == 1 ? "1.0" : "2.0-Beta";
            records.Add(record);
        }

        records.Add(Instance("q\uFFFFa"));
        records.Add(Instance("q\U00010000"));
        var batch = new CommitBatch();
        foreach (var record in records) batch.Instances.Add(Change(record));
        await store.CommitAsync(batch, CancellationToken.None);

        InstanceScan[] scans =
        [
            new() { Name = "approve" },
            new(Statuses: FinishedStatuses.Values) { Name = "APPROVE", TopLevelOnly = true },
            new() { Name = "\u00e4RGER" },
            new() { Name = "nobody" },
            new(Prefix: "n-01") { CreatedFrom = Epoch.AddMinutes(100).Ticks, CreatedTo = Epoch.AddMinutes(400).Ticks },
            new() { CompletedFrom = Epoch.AddMinutes(200).Ticks, CompletedTo = Epoch.AddMinutes(300).Ticks, Name = "ship" },
            new(After: "n-0350") { TopLevelOnly = true },
            new(Prefix: "q\uFFFF"),
            new() { Version = "1.0" },
            new(Statuses: FinishedStatuses.Values) { Version = "2.0-beta", Name = "ship" },
            new(Prefix: "n-02") { Version = "3.0" },
        ];
        foreach (var scan in scans)
        {
            var expected = records
                .Where(r => scan.Matches(r) && (scan.Prefix is null || r.InstanceId.StartsWith(scan.Prefix, StringComparison.Ordinal))
                    && (scan.After is null || InstanceIdOrder.Instance.Compare(r.InstanceId, scan.After) > 0))
                .Select(r => r.InstanceId).Order(InstanceIdOrder.Instance).ToList();
            var scanned = new List<string>();
            await foreach (var r in store.ScanInstancesAsync(scan, CancellationToken.None)) scanned.Add(r.InstanceId);
            Assert.Equal(expected, scanned);

            var counts = await store.CountInstancesAsync(scan with { After = null }, CancellationToken.None);
            var expectedCounts = new int[8];
            foreach (var r in records.Where(r => scan.Matches(r) && (scan.Prefix is null || r.InstanceId.StartsWith(scan.Prefix, StringComparison.Ordinal)))) expectedCounts[r.Status]++;
            Assert.Equal(expectedCounts, counts);
        }

        var underMaxChar = await ToListAsync(store.ScanInstancesAsync(new InstanceScan(Prefix: "q\uFFFF"), CancellationToken.None));
        Assert.Equal(["q\uFFFFa"], underMaxChar.Select(r => r.InstanceId));
        Assert.Equal(140, (await store.CountInstancesAsync(new InstanceScan { Name = "\u00e4RGER" }, CancellationToken.None)).Sum());
        // A version compares without regard to case, and a record without a version matches no version asked for.
        Assert.Equal(233, (await store.CountInstancesAsync(new InstanceScan { Version = "2.0-BETA" }, CancellationToken.None)).Sum());
    }

    /// <summary>
    /// Counts by name, parent and status follow every change a hub commits: a status change, a park (which keeps the
    /// status an instance is counted under), the write that unparks, a rewrite that gives or takes a parent, a deletion
    /// and a new instance under a deleted one's id. After each, every count equals what the records say.
    /// </summary>
    [Fact]
    public async Task Counts_FollowStatusChangesParkingRewritesAndDeletes()
    {
        var store = Open(NewHub());
        var records = new Dictionary<string, InstanceRecord>(StringComparer.Ordinal);
        const int Running = (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Running;
        const int Completed = (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Completed;
        const int Suspended = (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Suspended;

        async Task CommitAsync(IEnumerable<InstanceRecord> changed, IEnumerable<string>? deleted = null, IEnumerable<string>? parked = null)
        {
            var batch = new CommitBatch();
            foreach (var record in changed)
            {
                records[record.InstanceId] = record;
                batch.Instances.Add(Change(record));
            }

            foreach (string id in deleted ?? [])
            {
                records.Remove(id);
                batch.DeletedInstances.Add(id);
            }

            foreach (string id in parked ?? []) batch.ParkedInstances.Add(new ParkedInstance(id, null) { Status = records[id].Status });
            await store.CommitAsync(batch, CancellationToken.None);

            InstanceScan[] scans =
            [
                new(), new() { Name = "approve" }, new() { Name = "SHIP", TopLevelOnly = true }, new() { TopLevelOnly = true },
                new(Statuses: [Running, Suspended]), new(Statuses: [Completed]) { Name = "Ship" }, new() { Name = "nobody" },
            ];
            foreach (var scan in scans)
            {
                var expected = new int[8];
                foreach (var r in records.Values.Where(scan.Matches)) expected[r.Status]++;
                Assert.Equal(expected, await store.CountInstancesAsync(scan, CancellationToken.None));
            }
        }

        InstanceRecord With(string id, int status, string? parent = null, string name = "Approve")
        {
            var record = Instance(id, name: name, parent: parent);
            record.Status = status;
            if (status == Completed) record.CompletedAt = record.LastUpdatedAt;
            return record;
        }

        await CommitAsync(Enumerable.Range(0, 60).Select(i =>
            With($"c-{i:D2}", Running, parent: i % 4 == 0 ? "root" : null, name: i % 3 == 0 ? "Approve" : "Ship")));
        await CommitAsync([], parked: Enumerable.Range(0, 20).Select(i => $"c-{i:D2}"));
        await CommitAsync(Enumerable.Range(0, 60).Where(i => i % 5 == 0).Select(i => With($"c-{i:D2}", Completed, name: records[$"c-{i:D2}"].Name)));
        await CommitAsync([With("c-01", Suspended, parent: "root", name: "Ship"), With("c-04", Running, name: "Ship")],
            deleted: ["c-02", "c-03", "c-05"]);
        await CommitAsync([With("c-02", Running, name: "Ship"), With("c-03", Completed, parent: "root")], parked: ["c-06", "c-07"]);
    }

    /// <summary>
    /// The scheduler marks changes of an instance already stored (same id, name, creation time, parent, generation;
    /// and, for an activity result, the same running status): whatever a store skips for them, reads, scans by status
    /// and the finished-instance cap must see each instance as last committed.
    /// </summary>
    [Fact]
    public async Task ChangesMarkedUnchanged_ReadBackAsLastCommitted()
    {
        string hub = NewHub();
        var store = Open(hub);
        var ids = Enumerable.Range(0, 40).Select(i => $"u{i:D2}").ToList();
        var first = new CommitBatch();
        foreach (var id in ids) first.Instances.Add(Change(Instance(id, 0), Block(id, 0)));
        await store.CommitAsync(first, CancellationToken.None);

        var latest = new Dictionary<string, InstanceRecord>();
        for (int step = 1; step <= 5; step++)
        {
            var batch = new CommitBatch();
            foreach (var (id, i) in ids.Select((id, i) => (id, i)))
            {
                // Every other instance finishes at step 5 (a status change); the rest stay running.
                var record = Instance(id, step == 5 && i % 2 == 0 ? 5 : Math.Min(step, 4));
                if (record.HasCompletedAt) record.CompletedAt = Epoch.AddMinutes(i).Ticks;
                var running = record.Status == (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Running;
                batch.Instances.Add(new InstanceChange { Record = record, Append = Block(id, step), IndexUnchanged = true, StatusUnchanged = running });
                latest[id] = record;
            }

            await store.CommitAsync(batch, CancellationToken.None);
        }

        foreach (var id in ids)
        {
            var read = await store.ReadInstanceAsync(id, CancellationToken.None);
            Assert.NotNull(read);
            Assert.Equal(latest[id], read.Record);
            AssertHistory(Enumerable.Range(0, 6).Select(step => Block(id, step)).ToArray(), read.History);
        }

        var finished = new List<string>();
        await foreach (var r in store.ScanInstancesAsync(new InstanceScan(Statuses: FinishedStatuses.Values), CancellationToken.None)) finished.Add(r.InstanceId);
        Assert.Equal(ids.Where((_, i) => i % 2 == 0), finished);

        await store.DisposeAsync();
        var capped = await Open(hub).LoadAsync(3, CancellationToken.None);
        // The three finished last (by completion time) and every running one.
        Assert.Equal(new[] { "u34", "u36", "u38" }.Concat(ids.Where((_, i) => i % 2 == 1)).Order(StringComparer.Ordinal),
            capped.Instances.Select(i => i.Record.InstanceId).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task LoadWithACap_ReadsUnfinishedAndTheNewestFinished_AndCountsTheRest()
    {
        string hub = NewHub();
        var store = Open(hub);
        var batch = new CommitBatch();
        for (int i = 0; i < 30; i++)
        {
            var record = Instance($"f{i:D2}", 5);
            record.CompletedAt = Epoch.AddMinutes(i).Ticks;
            if (i % 5 == 0) record.Status = (int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Failed;
            batch.Instances.Add(Change(record, Block(record.InstanceId, 0)));
        }

        for (int i = 0; i < 4; i++) batch.Instances.Add(Change(Instance($"r{i}", 2), Block($"r{i}", 0)));
        await store.CommitAsync(batch, CancellationToken.None);

        await store.DisposeAsync();
        var reopened = Open(hub);
        var loaded = await reopened.LoadAsync(CancellationToken.None);
        await reopened.DisposeAsync();
        Assert.Equal(34, loaded.Instances.Count);
        Assert.All(loaded.InStore, n => Assert.Equal(0, n));

        var capped = await Open(hub).LoadAsync(7, CancellationToken.None);
        var loadedIds = capped.Instances.Select(i => i.Record.InstanceId).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["f23", "f24", "f25", "f26", "f27", "f28", "f29", "r0", "r1", "r2", "r3"], loadedIds);
        Assert.All(capped.Instances, i => Assert.NotEmpty(i.History));
        // Not loaded: f00-f22, of which f00, f05, f10, f15 and f20 failed.
        Assert.Equal(18, capped.InStore[(int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Completed]);
        Assert.Equal(5, capped.InStore[(int)Microsoft.DurableTask.Protobuf.OrchestrationStatus.Failed]);
    }

    [Fact]
    public async Task ReplaceHistory_DropsEveryEarlierBlock()
    {
        string hub = NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("a", 0), Block("a", 0))), CancellationToken.None);
        await store.CommitAsync(Batch(Change(Instance("a", 1), Block("a", 1))), CancellationToken.None);

        // Continue-as-new: a new generation starts with a fresh history.
        var next = Instance("a", 0);
        next.HistoryGeneration = 1;
        await store.CommitAsync(Batch(Change(next, Block("a", 0, generation: 1), replaceHistory: true)), CancellationToken.None);
        await store.CommitAsync(Batch(Change(next, Block("a", 1, generation: 1))), CancellationToken.None);
        var expected = new Dictionary<string, (InstanceRecord, HistoryBlock[])>
        {
            ["a"] = (next, [Block("a", 0, 1), Block("a", 1, 1)]),
        };
        AssertHub(expected, await store.LoadAsync(CancellationToken.None));
        AssertHistory(expected["a"].Item2, await store.ReadHistoryAsync("a", CancellationToken.None));

        // Replacing with nothing leaves an empty history.
        next.HistoryGeneration = 2;
        await store.CommitAsync(Batch(Change(next, replaceHistory: true)), CancellationToken.None);
        Assert.Empty((await store.LoadAsync(CancellationToken.None)).Instances.Single().History);
        Assert.Empty(await store.ReadHistoryAsync("a", CancellationToken.None));
        Assert.Empty((await ReopenAndLoadAsync(hub, store)).Instances.Single().History);
    }

    [Fact]
    public async Task BlocksOfAnEarlierGeneration_AreNotReturned()
    {
        var store = Open(NewHub());
        await store.CommitAsync(Batch(Change(Instance("a", 0), Block("a", 0, generation: 0))), CancellationToken.None);
        var next = Instance("a", 0);
        next.HistoryGeneration = 1;
        await store.CommitAsync(Batch(Change(next, Block("a", 0, generation: 1))), CancellationToken.None);

        var loaded = (await store.LoadAsync(CancellationToken.None)).Instances.Single();
        AssertHistory([Block("a", 0, 1)], loaded.History);
        AssertHistory([Block("a", 0, 1)], await store.ReadHistoryAsync("a", CancellationToken.None));
    }

    [Fact]
    public async Task DeletedInstances_AreGoneWithTheirHistory()
    {
        string hub = NewHub();
        var store = Open(hub);
        var keep = Instance("keep", 1);
        await store.CommitAsync(Batch(
            Change(Instance("a", 0), Block("a", 0)),
            Change(Instance("b", 0), Block("b", 0)),
            Change(keep, Block("keep", 0))), CancellationToken.None);

        var purge = new CommitBatch();
        purge.DeletedInstances.Add("a");
        purge.DeletedInstances.Add("b");
        purge.DeletedInstances.Add("never-existed");
        await store.CommitAsync(purge, CancellationToken.None);
        Assert.Empty(await store.ReadHistoryAsync("a", CancellationToken.None));

        // An id used again starts from scratch.
        var again = Instance("b", 0);
        await store.CommitAsync(Batch(Change(again, Block("b", 3))), CancellationToken.None);

        var expected = new Dictionary<string, (InstanceRecord, HistoryBlock[])>
        {
            ["keep"] = (keep, [Block("keep", 0)]),
            ["b"] = (again, [Block("b", 3)]),
        };
        AssertHub(expected, await store.LoadAsync(CancellationToken.None));
        AssertHub(expected, await ReopenAndLoadAsync(hub, store));
    }

    [Fact]
    public async Task Entities_AreUpsertedAndDeleted()
    {
        string hub = NewHub();
        var store = Open(hub);
        var first = new CommitBatch();
        first.Entities.Add(Entity("@counter@a", 1));
        first.Entities.Add(Entity("@counter@b", 2));
        first.Entities.Add(Entity("@counter@c", 3));
        await store.CommitAsync(first, CancellationToken.None);

        var second = new CommitBatch();
        var a2 = Entity("@counter@a", 20);
        a2.LockedBy = "orchestration-1";
        a2.LockCriticalSectionId = "cs-1";
        a2.Scheduled.Add(new EntityMessageRecord { Event = Google.Protobuf.ByteString.CopyFromUtf8("x"), DueAt = Epoch.Ticks, Legacy = true });
        second.Entities.Add(a2);
        second.DeletedEntities.Add("@counter@b");
        second.DeletedEntities.Add("@counter@never");
        await store.CommitAsync(second, CancellationToken.None);

        var c = Entity("@counter@c", 3);
        void Check(StoredHub loaded)
        {
            Assert.Empty(loaded.Instances);
            var byId = loaded.Entities.ToDictionary(e => e.InstanceId);
            Assert.Equal(["@counter@a", "@counter@c"], byId.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(a2, byId["@counter@a"]);
            Assert.Equal(c.State, byId["@counter@c"].State);
            Assert.Equal(c.LastModified, byId["@counter@c"].LastModified);
        }

        Check(await store.LoadAsync(CancellationToken.None));
        Check(await ReopenAndLoadAsync(hub, store));
    }

    [Fact]
    public async Task FailedCommit_LeavesNothingOfTheBatch()
    {
        string hub = NewHub();
        var store = Open(hub);
        var a = Instance("a", 1);
        var b = Instance("b", 1);
        var before = new CommitBatch();
        before.Instances.Add(Change(a, Block("a", 0)));
        before.Instances.Add(Change(b, Block("b", 0)));
        before.Entities.Add(Entity("@counter@x", 1));
        await store.CommitAsync(before, CancellationToken.None);

        // Touches every kind of change; the backend refuses it part-way.
        var failing = new CommitBatch();
        failing.Instances.Add(Change(Instance("a", 2), Block("a", 1)));
        failing.Instances.Add(Change(Instance("new", 0), Block("new", 0)));
        failing.Instances.Add(Change(Instance("b", 0), Block("b", 9), replaceHistory: true));
        failing.DeletedInstances.Add("never");
        failing.Entities.Add(Entity("@counter@x", 99));
        failing.Entities.Add(Entity("@counter@y", 5));
        failing.Entities.Add(Entity("@boom@z", 5));
        await using (await BreakCommitsAsync(hub))
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => store.CommitAsync(failing, CancellationToken.None));
            Output.WriteLine($"the broken commit failed with {error.GetType().Name}: {error.Message}");
        }

        var expected = new Dictionary<string, (InstanceRecord, HistoryBlock[])>
        {
            ["a"] = (a, [Block("a", 0)]),
            ["b"] = (b, [Block("b", 0)]),
        };
        var loaded = await store.LoadAsync(CancellationToken.None);
        AssertHub(expected, loaded);
        Assert.Equal("1", Assert.Single(loaded.Entities).State);

        // The store goes on working after the failure.
        await store.CommitAsync(failing, CancellationToken.None);
        var after = await ReopenAndLoadAsync(hub, store);
        Assert.Equal(["a", "b", "new"], after.Instances.Select(i => i.Record.InstanceId).Order(StringComparer.Ordinal));
        AssertHistory([Block("b", 9)], after.Instances.Single(i => i.Record.InstanceId == "b").History);
        Assert.Equal(3, after.Entities.Count);
    }

    [Fact]
    public async Task CanceledCommit_AppliesNothing()
    {
        var store = Open(NewHub());
        using var canceled = new CancellationTokenSource();
        canceled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), canceled.Token));
        Assert.Empty((await store.LoadAsync(CancellationToken.None)).Instances);
    }

    [Fact]
    public async Task MegabytePayloads_RoundTrip()
    {
        string hub = NewHub();
        var store = Open(hub);
        string big = new string('x', 1024 * 1024);
        var record = Instance("big", 5, input: big);
        record.Output = big + "!";
        record.CustomStatus = big + "?";
        var block = Block("big", 0);
        block.Events.Add(Google.Protobuf.ByteString.CopyFromUtf8(big));
        var entity = Entity("@blob@big", state: big);
        var batch = Batch(Change(record, block));
        batch.Entities.Add(entity);
        await store.CommitAsync(batch, CancellationToken.None);
        await store.CommitAsync(Batch(Change(record, block)), CancellationToken.None);

        var loaded = await ReopenAndLoadAsync(hub, store);
        var instance = Assert.Single(loaded.Instances);
        Assert.Equal(record, instance.Record);
        AssertHistory([block, block], instance.History);
        Assert.Equal(entity, Assert.Single(loaded.Entities));
    }

    [Fact]
    public async Task TenThousandInstances_LoadBackCompletely()
    {
        const int Batches = 10, PerBatch = 1000;
        string hub = NewHub();
        var store = Open(hub);
        var expected = new Dictionary<string, InstanceRecord>();
        var commit = Stopwatch.StartNew();
        for (int b = 0; b < Batches; b++)
        {
            var batch = new CommitBatch();
            for (int i = 0; i < PerBatch; i++)
            {
                string id = $"inst-{b:D2}-{i:D4}";
                var record = Instance(id, i % 6, parent: i % 10 == 0 ? "root" : null);
                expected[id] = record;
                batch.Instances.Add(Change(record, Block(id, i % 6)));
            }

            await store.CommitAsync(batch, CancellationToken.None);
        }

        commit.Stop();
        await store.DisposeAsync();
        var reopened = Open(hub);
        var load = Stopwatch.StartNew();
        var loaded = await reopened.LoadAsync(CancellationToken.None);
        load.Stop();
        Output.WriteLine($"{GetType().Name}: committed {Batches * PerBatch:N0} instances in {Batches} batches in {commit.ElapsedMilliseconds} ms; " +
                         $"loaded them in {load.ElapsedMilliseconds} ms");

        Assert.Equal(expected.Count, loaded.Instances.Count);
        foreach (var instance in loaded.Instances)
        {
            Assert.Equal(expected[instance.Record.InstanceId], instance.Record);
            var only = Assert.Single(instance.History);
            Assert.Equal(Block(instance.Record.InstanceId, 0).Events.Count, only.Events.Count);
        }
    }

    [Fact]
    public async Task HistoryReads_DuringCommits_SeeEveryCommittedBlockInOrder()
    {
        var store = Open(NewHub());
        await store.CommitAsync(Batch(Change(Instance("a", 0), Block("a", 0)), Change(Instance("b", 0), Block("b", 0))), CancellationToken.None);
        using var done = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            for (int step = 1; step <= 200; step++)
            {
                await store.CommitAsync(Batch(Change(Instance("a", step % 5), Block("a", step)), Change(Instance("b", step % 5), Block("b", step))), CancellationToken.None);
            }
        });

        int reads = 0, seen = 1;
        while (!writer.IsCompleted)
        {
            // Never fewer blocks than a read before, and always in commit order.
            var a = await store.ReadHistoryAsync("a", CancellationToken.None);
            Assert.InRange(a.Count, seen, 201);
            for (int i = 0; i < a.Count; i++)
            {
                var scheduled = Microsoft.DurableTask.Protobuf.HistoryEvent.Parser.ParseFrom(a[i].Events[^2]);
                Assert.Equal(i, scheduled.EventId);
            }

            seen = a.Count;
            reads++;
        }

        await writer;
        Assert.Equal(201, (await store.ReadHistoryAsync("a", CancellationToken.None)).Count);
        Output.WriteLine($"{reads} history reads during 200 commits");
    }

    [Fact]
    public async Task DamagedRecord_IsReportedWithTheInstanceId()
    {
        string hub = NewHub();
        var store = Open(hub);
        await store.CommitAsync(Batch(Change(Instance("fine", 0), Block("fine", 0)), Change(Instance("victim-42", 0), Block("victim-42", 0))), CancellationToken.None);
        await store.DisposeAsync();

        await DamageInstanceRecordAsync(hub, "victim-42");
        var error = await Assert.ThrowsAsync<StoreCorruptedException>(() => Open(hub).LoadAsync(CancellationToken.None));
        Output.WriteLine(error.Message);
        Assert.Contains("victim-42", error.Message);
    }

    protected static void AssertHub(Dictionary<string, (InstanceRecord Record, HistoryBlock[] History)> expected, StoredHub actual)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Instances.Select(i => i.Record.InstanceId).Order(StringComparer.Ordinal));
        foreach (var instance in actual.Instances)
        {
            var (record, history) = expected[instance.Record.InstanceId];
            Assert.Equal(record, instance.Record);
            AssertHistory(history, instance.History);
        }
    }

    protected static void AssertHistory(IReadOnlyList<HistoryBlock> expected, IReadOnlyList<HistoryBlock> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Generation, actual[i].Generation);
            Assert.Equal(expected[i].Events.Count, actual[i].Events.Count);
            // Blocks are compared without the random execution id of an ExecutionStarted event.
            for (int e = 0; e < expected[i].Events.Count; e++)
            {
                var x = Microsoft.DurableTask.Protobuf.HistoryEvent.Parser.ParseFrom(expected[i].Events[e]);
                var y = Microsoft.DurableTask.Protobuf.HistoryEvent.Parser.ParseFrom(actual[i].Events[e]);
                if (x.ExecutionStarted is not null) x.ExecutionStarted.OrchestrationInstance.ExecutionId = y.ExecutionStarted?.OrchestrationInstance?.ExecutionId ?? "";
                Assert.Equal(x, y);
            }
        }
    }
}
