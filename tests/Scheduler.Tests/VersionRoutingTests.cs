using System.Text.Json;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Versions in work-item filters, with the real SDK: workers of one app at two versions on one hub (a rolling
/// upgrade), each with strict versioning that fails an orchestration of another version and with filters generated
/// from its registrations, so a work item handed to the wrong worker shows up as a failed instance.
/// </summary>
public sealed class VersionRoutingTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    /// <summary>
    /// "Order" reports the worker that ran it, the one that ran "Stamp" at its own version, and the one that ran
    /// "Stamp" at <c>other</c> (an explicit activity version); "Parent" runs "Order" as a sub-orchestration at <c>other</c>.
    /// </summary>
    static Action<DurableTaskRegistry> Tasks(string version) => r => r
        .AddOrchestratorFunc<string, string>("Order", async (ctx, other) =>
        {
            string own = await ctx.CallActivityAsync<string>("Stamp", "");
            string explicitly = other.Length == 0 ? "" : await ctx.CallActivityAsync<string>("Stamp", "", new TaskOptions { Version = other });
            return $"{version}|{own}|{explicitly}";
        })
        .AddOrchestratorFunc<string, string>("Parent", async (ctx, other) =>
            $"{version}>" + await ctx.CallSubOrchestratorAsync<string>("Order", "", new SubOrchestrationOptions { Version = other }))
        .AddOrchestratorFunc<string, string>("Upgrade", (ctx, target) =>
        {
            // Moves itself to the target version; the execution at that version reports where it ran.
            if (ctx.Version == target) return Task.FromResult($"{version} after {ctx.Version}");
            ctx.ContinueAsNew(new ContinueAsNewOptions { NewInput = target, NewVersion = target });
            return Task.FromResult("");
        })
        .AddActivityFunc<string, string>("Stamp", (_, _) => version);

    Task<TestApp> StartWorkerAsync(string hub, string version) => TestApp.StartAsync(scheduler, hub, Tasks(version), output, w => w
        .UseVersioning(new DurableTaskWorkerOptions.VersioningOptions
        {
            Version = version,
            DefaultVersion = version,
            MatchStrategy = DurableTaskWorkerOptions.VersionMatchStrategy.Strict,
            FailureStrategy = DurableTaskWorkerOptions.VersionFailureStrategy.Fail,
        })
        .UseWorkItemFilters());

    static Task<string> StartAsync(TestApp app, string name, string version, string input) =>
        app.Client.ScheduleNewOrchestrationInstanceAsync(name, input, new StartOrchestrationOptions { Version = version });

    [Fact]
    public async Task RollingUpgrade_EveryOrchestrationAndActivityRunsOnTheWorkerOfItsVersion()
    {
        string hub = SchedulerFixture.NewHub();
        await using var v1 = await StartWorkerAsync(hub, "1.0");
        await using var v2 = await StartWorkerAsync(hub, "2.0");

        var started = new List<(string Id, string Expected)>();
        for (int i = 0; i < 40; i++)
        {
            // Half at each version; every fourth also asks for "Stamp" at the other version.
            string version = i % 2 == 0 ? "1.0" : "2.0", other = version == "1.0" ? "2.0" : "1.0";
            bool cross = i % 4 < 2;
            started.Add((await StartAsync(v1, "Order", version, cross ? other : ""), $"{version}|{version}|{(cross ? other : "")}"));
        }

        foreach (var (id, expected) in started)
        {
            // A work item handed to the other version's worker fails the instance ("... does not match the worker version").
            Assert.Equal(expected, (await v1.Client.CompletedAsync(id)).ReadOutputAs<string>());
        }
    }

    [Fact]
    public async Task SubOrchestration_AtAnotherVersion_RunsOnThatVersionsWorker()
    {
        string hub = SchedulerFixture.NewHub();
        await using var v1 = await StartWorkerAsync(hub, "1.0");
        await using var v2 = await StartWorkerAsync(hub, "2.0");

        string up = await StartAsync(v1, "Parent", "1.0", "2.0");
        string down = await StartAsync(v1, "Parent", "2.0", "1.0");

        Assert.Equal("1.0>2.0|2.0|", (await v1.Client.CompletedAsync(up)).ReadOutputAs<string>());
        Assert.Equal("2.0>1.0|1.0|", (await v1.Client.CompletedAsync(down)).ReadOutputAs<string>());
    }

    [Fact]
    public async Task ContinueAsNew_WithANewVersion_RunsTheNextExecutionOnThatVersionsWorker()
    {
        string hub = SchedulerFixture.NewHub();
        await using var v1 = await StartWorkerAsync(hub, "1.0");
        await using var v2 = await StartWorkerAsync(hub, "2.0");

        string id = await StartAsync(v1, "Upgrade", "1.0", "2.0");
        Assert.Equal("2.0 after 2.0", (await v1.Client.CompletedAsync(id)).ReadOutputAs<string>());
    }

    [Fact]
    public async Task AVersionNoWorkerServes_WaitsInTheBacklog_UntilItsWorkerConnects()
    {
        string hub = SchedulerFixture.NewHub();
        await using var v1 = await StartWorkerAsync(hub, "1.0");
        string id = await StartAsync(v1, "Order", "3.0", "");
        string served = await StartAsync(v1, "Order", "1.0", "");
        Assert.Equal("1.0|1.0|", (await v1.Client.CompletedAsync(served)).ReadOutputAs<string>());

        var backlog = await Waits.UntilAsync(() => GetAsync(hub, "backlog"),
            b => b.GetProperty("groups").GetArrayLength() > 0, "the 3.0 orchestration in the backlog");
        Assert.Equal(1, backlog.GetProperty("orchestrations").GetInt32());
        var group = Assert.Single(backlog.GetProperty("groups").EnumerateArray());
        Assert.Equal(("orchestration", "Order", "3.0", 1, 0), (group.GetProperty("type").GetString(), group.GetProperty("name").GetString(),
            group.GetProperty("version").GetString(), group.GetProperty("count").GetInt32(), group.GetProperty("acceptingWorkers").GetInt32()));
        Assert.Equal(OrchestrationRuntimeStatus.Pending, (await v1.Client.GetInstanceAsync(id))!.RuntimeStatus);

        // The worker lists what it takes: its own version of each name it registered.
        var worker = Assert.Single((await GetAsync(hub, "workers")).EnumerateArray());
        var filters = worker.GetProperty("filters");
        Assert.Equal(["Order:1.0", "Parent:1.0", "Upgrade:1.0"], filters.GetProperty("orchestrations").EnumerateArray()
            .Select(f => f.GetProperty("name").GetString() + ":" + string.Join(",", f.GetProperty("versions").EnumerateArray().Select(v => v.GetString()))));
        Assert.Equal(["Stamp:1.0"], filters.GetProperty("activities").EnumerateArray()
            .Select(f => f.GetProperty("name").GetString() + ":" + string.Join(",", f.GetProperty("versions").EnumerateArray().Select(v => v.GetString()))));

        await using var v3 = await StartWorkerAsync(hub, "3.0");
        Assert.Equal("3.0|3.0|", (await v1.Client.CompletedAsync(id)).ReadOutputAs<string>());
        Assert.Equal(0, (await GetAsync(hub, "backlog")).GetProperty("groups").GetArrayLength());
    }

    async Task<JsonElement> GetAsync(string hub, string what)
    {
        using var http = new HttpClient();
        return JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{scheduler.HttpPort}/api/v1/taskhubs/{hub}/{what}")).RootElement;
    }
}
