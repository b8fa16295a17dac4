using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.Storage.InMemory;
using Xunit.Abstractions;
using static DurableTask.Scheduler.Tests.Storage.StoreTestData;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>The in-memory store keeps nothing: only the contract that holds for every store applies.</summary>
public sealed class MemoryStoreTests(ITestOutputHelper output) : StoreContractTests(output)
{
    readonly InMemoryStoreProvider _provider = new();

    protected override bool ExpectDurable => false;

    protected override ITaskHubStore OpenStore(string hub) => _provider.Open(hub);

    [Fact]
    public async Task Commits_AreNotKept()
    {
        var store = Open(NewHub());
        await store.CommitAsync(Batch(Change(Instance("a"), Block("a", 0))), CancellationToken.None);
        Assert.Empty((await store.LoadAsync(CancellationToken.None)).Instances);
    }
}
