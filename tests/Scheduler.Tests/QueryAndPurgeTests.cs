using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>Instance queries (filters, paging) and purges through the .NET client.</summary>
public sealed class QueryAndPurgeTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    Task<TestApp> StartAsync() => TestApp.StartAsync(scheduler, SchedulerFixture.NewHub(), r => r
        .AddOrchestratorFunc<string, string>("Echo", (_, s) => Task.FromResult(s))
        .AddOrchestratorFunc<string, string>("Fail", Task<string> (_, s) => throw new InvalidOperationException(s))
        .AddOrchestratorFunc<string, string>("Parent", async (ctx, s) =>
            await ctx.CallSubOrchestratorAsync<string>("Echo", s + "-1", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-c1" }) +
            await ctx.CallSubOrchestratorAsync<string>("Echo", s + "-2", new SubOrchestrationOptions { InstanceId = ctx.InstanceId + "-c2" })),
        output);

    static async Task<List<OrchestrationMetadata>> AllAsync(DurableTaskClient client, OrchestrationQuery query)
    {
        var list = new List<OrchestrationMetadata>();
        await foreach (var item in client.GetAllInstancesAsync(query)) list.Add(item);
        return list;
    }

    async Task<List<string>> RunAsync(TestApp app, string name, IEnumerable<string> ids)
    {
        var list = ids.ToList();
        foreach (string id in list) await app.Client.ScheduleNewOrchestrationInstanceAsync(name, id, new StartOrchestrationOptions(id));
        foreach (string id in list) await app.Client.CompletionAsync(id);
        return list;
    }

    [Fact]
    public async Task Query_FiltersByStatusCreatedTimeAndPrefix()
    {
        await using var app = await StartAsync();

        var early = await RunAsync(app, "Echo", Enumerable.Range(0, 6).Select(i => $"early-{i:D2}"));
        await Task.Delay(50);
        DateTimeOffset boundary = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        var late = await RunAsync(app, "Echo", Enumerable.Range(0, 4).Select(i => $"late-{i:D2}"));
        var failed = await RunAsync(app, "Fail", ["failed-0", "failed-1"]);
        var future = Enumerable.Range(0, 3).Select(i => $"future-{i}").ToList();
        foreach (string id in future)
        {
            await app.Client.ScheduleNewOrchestrationInstanceAsync("Echo", id,
                new StartOrchestrationOptions(id, DateTimeOffset.UtcNow.AddHours(1)));
        }

        var all = await AllAsync(app.Client, new OrchestrationQuery());
        Assert.Equal(early.Concat(late).Concat(failed).Concat(future).Order(), all.Select(s => s.InstanceId).Order());

        var completed = await AllAsync(app.Client, new OrchestrationQuery { Statuses = [OrchestrationRuntimeStatus.Completed] });
        Assert.Equal(early.Concat(late).Order(), completed.Select(s => s.InstanceId).Order());

        var failedOrPending = await AllAsync(app.Client, new OrchestrationQuery
        {
            Statuses = [OrchestrationRuntimeStatus.Failed, OrchestrationRuntimeStatus.Pending],
        });
        Assert.Equal(failed.Concat(future).Order(), failedOrPending.Select(s => s.InstanceId).Order());
        Assert.All(failedOrPending.Where(s => s.InstanceId.StartsWith("failed")),
            s => Assert.Equal(OrchestrationRuntimeStatus.Failed, s.RuntimeStatus));

        var createdAfter = await AllAsync(app.Client, new OrchestrationQuery { CreatedFrom = boundary });
        Assert.Equal(late.Concat(failed).Concat(future).Order(), createdAfter.Select(s => s.InstanceId).Order());

        var createdBefore = await AllAsync(app.Client, new OrchestrationQuery { CreatedTo = boundary });
        Assert.Equal(early.Order(), createdBefore.Select(s => s.InstanceId).Order());

        var prefixed = await AllAsync(app.Client, new OrchestrationQuery { InstanceIdPrefix = "late-0" });
        Assert.Equal(late.Order(), prefixed.Select(s => s.InstanceId).Order());

        var combined = await AllAsync(app.Client, new OrchestrationQuery
        {
            InstanceIdPrefix = "early-0",
            Statuses = [OrchestrationRuntimeStatus.Completed],
            CreatedTo = boundary,
            FetchInputsAndOutputs = true,
        });
        Assert.Equal(early.Order(), combined.Select(s => s.InstanceId).Order());
        Assert.All(combined, s => Assert.Equal($"\"{s.InstanceId}\"", s.SerializedOutput));

        var noPayloads = await AllAsync(app.Client, new OrchestrationQuery { InstanceIdPrefix = "early-", FetchInputsAndOutputs = false });
        Assert.Equal(6, noPayloads.Count);
        Assert.All(noPayloads, s =>
        {
            Assert.Null(s.SerializedInput);
            Assert.Null(s.SerializedOutput);
            Assert.Equal("Echo", s.Name);
        });

        Assert.Empty(await AllAsync(app.Client, new OrchestrationQuery { InstanceIdPrefix = "nothing-" }));
    }

    [Fact]
    public async Task Query_PagesWithContinuationTokens_AndPageSizeMayChangeMidway()
    {
        await using var app = await StartAsync();
        var ids = await RunAsync(app, "Echo", Enumerable.Range(0, 23).Select(i => $"page-{i:D2}"));

        // AsPages: pages of at most 5, every instance exactly once, no token after the last page.
        var pages = new List<Page<OrchestrationMetadata>>();
        await foreach (var page in app.Client.GetAllInstancesAsync(new OrchestrationQuery { PageSize = 5 }).AsPages())
        {
            pages.Add(page);
            Assert.True(pages.Count <= 10, "paging terminates");
        }

        Assert.All(pages, p => Assert.True(p.Values.Count <= 5, $"page of {p.Values.Count} items"));
        Assert.Equal(ids.Order(), pages.SelectMany(p => p.Values).Select(s => s.InstanceId).Order());
        Assert.Null(pages[^1].ContinuationToken);
        Assert.All(pages.SkipLast(1), p => Assert.NotNull(p.ContinuationToken));
        output.WriteLine($"page sizes: {string.Join(",", pages.Select(p => p.Values.Count))}");

        // Same through the token API, changing the page size after the first page.
        var seen = new List<string>();
        string? token = null;
        int size = 4, calls = 0;
        do
        {
            var page = await app.Client.GetAllInstancesAsync(new OrchestrationQuery { PageSize = size, ContinuationToken = token })
                .AsPages(token, size).FirstAsync();
            Assert.True(page.Values.Count <= size, $"page of {page.Values.Count} > {size}");
            seen.AddRange(page.Values.Select(s => s.InstanceId));
            token = page.ContinuationToken;
            size = 7;
            Assert.True(++calls <= 10, "paging terminates");
        }
        while (token is not null);

        Assert.Equal(ids.Order(), seen.Order());
        Assert.Equal(seen.Count, seen.Distinct().Count());
    }

    [Fact]
    public async Task Purge_SingleInstance()
    {
        await using var app = await StartAsync();
        var ids = await RunAsync(app, "Echo", ["keep", "drop"]);

        var result = await app.Client.PurgeInstanceAsync("drop");
        Assert.Equal(1, result.PurgedInstanceCount);
        Assert.Null(await app.Client.GetInstanceAsync("drop"));
        Assert.NotNull(await app.Client.GetInstanceAsync("keep"));

        Assert.Equal(0, (await app.Client.PurgeInstanceAsync("drop")).PurgedInstanceCount);
        Assert.DoesNotContain("drop", (await AllAsync(app.Client, new OrchestrationQuery())).Select(s => s.InstanceId));
    }

    [Fact]
    public async Task Purge_ByFilter_RemovesOnlyMatchingTerminalInstances()
    {
        await using var app = await StartAsync();
        var old = await RunAsync(app, "Echo", ["old-0", "old-1", "old-2"]);
        var oldFailed = await RunAsync(app, "Fail", ["old-failed"]);
        await Task.Delay(50);
        DateTimeOffset boundary = DateTimeOffset.UtcNow;
        await Task.Delay(50);
        var recent = await RunAsync(app, "Echo", ["new-0", "new-1"]);

        var result = await app.Client.PurgeAllInstancesAsync(
            new PurgeInstancesFilter(CreatedFrom: DateTimeOffset.UtcNow.AddHours(-1), CreatedTo: boundary,
                Statuses: [OrchestrationRuntimeStatus.Completed]));
        Assert.Equal(3, result.PurgedInstanceCount);

        var left = await AllAsync(app.Client, new OrchestrationQuery());
        Assert.Equal(oldFailed.Concat(recent).Order(), left.Select(s => s.InstanceId).Order());
        foreach (string id in old) Assert.Null(await app.Client.GetInstanceAsync(id));
    }

    [Fact]
    public async Task Purge_Recursive_RemovesSubOrchestrations()
    {
        await using var app = await StartAsync();
        string id = "tree-" + Guid.NewGuid().ToString("N")[..8];
        await app.Client.ScheduleNewOrchestrationInstanceAsync("Parent", "p", new StartOrchestrationOptions(id));
        Assert.Equal("p-1p-2", (await app.Client.CompletedAsync(id)).ReadOutputAs<string>());
        Assert.NotNull(await app.Client.GetInstanceAsync(id + "-c1"));
        Assert.NotNull(await app.Client.GetInstanceAsync(id + "-c2"));

        var result = await app.Client.PurgeInstanceAsync(id, new PurgeInstanceOptions(Recursive: true));
        output.WriteLine($"recursive purge count: {result.PurgedInstanceCount}");
        Assert.True(result.PurgedInstanceCount >= 1);

        Assert.Null(await app.Client.GetInstanceAsync(id));
        Assert.Null(await app.Client.GetInstanceAsync(id + "-c1"));
        Assert.Null(await app.Client.GetInstanceAsync(id + "-c2"));
        Assert.Empty(await AllAsync(app.Client, new OrchestrationQuery { InstanceIdPrefix = id }));
    }
}
