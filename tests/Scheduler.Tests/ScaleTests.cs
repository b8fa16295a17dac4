using System.Diagnostics;
using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests;

/// <summary>A scheduler of its own for the scale test, which runs alone (not in parallel with other classes).</summary>
public sealed class ScaleSchedulerFixture : SchedulerFixture;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ScaleCollection : ICollectionFixture<ScaleSchedulerFixture>
{
    public const string Name = "Scale";
}

[Collection(ScaleCollection.Name)]
public sealed class ScaleTests(ScaleSchedulerFixture scheduler, ITestOutputHelper output)
{
    const int Count = 100_000;

    [Fact]
    public async Task HundredThousandInstances_PagedQueriesStayFast()
    {
        string hub = SchedulerFixture.NewHub("scale");
        var raw = scheduler.Raw(hub);

        // 100,000 instances scheduled for tomorrow: they stay Pending.
        var later = Timestamp.FromDateTime(DateTime.UtcNow.AddDays(1));
        var sw = Stopwatch.StartNew();
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Count)
            {
                await raw.StartInstanceAsync(new P.CreateInstanceRequest
                {
                    InstanceId = $"scale-{i:D6}",
                    Name = "Later",
                    Input = i.ToString(),
                    ScheduledStartTimestamp = later,
                });
            }
        }));
        output.WriteLine($"created {Count:N0} pending instances in {sw.Elapsed.TotalSeconds:F1} s ({Count / sw.Elapsed.TotalSeconds:N0}/s)");

        // A few completed ones among them.
        await using var app = await TestApp.StartAsync(scheduler, hub, r => r.AddOrchestratorFunc<int, int>("Quick", (_, n) => Task.FromResult(n)), output);
        for (int i = 0; i < 20; i++)
        {
            await app.Client.ScheduleNewOrchestrationInstanceAsync("Quick", i, new StartOrchestrationOptions($"done-{i:D2}"));
        }

        for (int i = 0; i < 20; i++) await app.Client.CompletedAsync($"done-{i:D2}");

        var bound = TimeSpan.FromSeconds(2);

        var (pending, pendingTime) = await FirstPageAsync(app.Client, new OrchestrationQuery { Statuses = [OrchestrationRuntimeStatus.Pending], PageSize = 100 });
        output.WriteLine($"first page, status Pending, 100 of {Count:N0}: {pendingTime.TotalMilliseconds:F1} ms");
        Assert.Equal(100, pending.Values.Count);
        Assert.NotNull(pending.ContinuationToken);
        Assert.All(pending.Values, s => Assert.Equal(OrchestrationRuntimeStatus.Pending, s.RuntimeStatus));

        var (completed, completedTime) = await FirstPageAsync(app.Client, new OrchestrationQuery { Statuses = [OrchestrationRuntimeStatus.Completed], PageSize = 100 });
        output.WriteLine($"status Completed (20 among {Count:N0}): {completedTime.TotalMilliseconds:F1} ms");
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"done-{i:D2}"), completed.Values.Select(s => s.InstanceId).Order());
        Assert.Null(completed.ContinuationToken);

        var (prefixed, prefixTime) = await FirstPageAsync(app.Client, new OrchestrationQuery
        {
            InstanceIdPrefix = "scale-0421",
            Statuses = [OrchestrationRuntimeStatus.Pending],
            PageSize = 100,
        });
        output.WriteLine($"prefix scale-0421 + status Pending: {prefixTime.TotalMilliseconds:F1} ms");
        Assert.Equal(Enumerable.Range(42100, 100).Select(i => $"scale-{i:D6}"), prefixed.Values.Select(s => s.InstanceId).Order());

        // Deep paging through continuation tokens.
        var times = new List<double>();
        var seen = new HashSet<string>();
        string? token = null;
        for (int page = 0; page < 50; page++)
        {
            var (p, t) = await FirstPageAsync(app.Client, new OrchestrationQuery
            {
                Statuses = [OrchestrationRuntimeStatus.Pending], PageSize = 100, ContinuationToken = token,
            });
            times.Add(t.TotalMilliseconds);
            Assert.Equal(100, p.Values.Count);
            foreach (var s in p.Values) Assert.True(seen.Add(s.InstanceId), $"{s.InstanceId} was returned twice");
            token = p.ContinuationToken;
            Assert.NotNull(token);
        }

        output.WriteLine($"50 consecutive pages of 100: mean {times.Average():F1} ms, max {times.Max():F1} ms");

        Assert.True(pendingTime < bound, $"status query took {pendingTime.TotalMilliseconds} ms");
        Assert.True(completedTime < bound, $"selective status query took {completedTime.TotalMilliseconds} ms");
        Assert.True(prefixTime < bound, $"prefix query took {prefixTime.TotalMilliseconds} ms");
        Assert.True(times.Max() < bound.TotalMilliseconds, $"a page took {times.Max()} ms");
    }

    static async Task<(Page<OrchestrationMetadata> Page, TimeSpan Elapsed)> FirstPageAsync(DurableTaskClient client, OrchestrationQuery query)
    {
        var sw = Stopwatch.StartNew();
        var page = await client.GetAllInstancesAsync(query).AsPages(query.ContinuationToken, query.PageSize).FirstAsync();
        return (page, sw.Elapsed);
    }
}
