using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Hosting;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// The scheduler's traces and metrics as an exporter receives them. One orchestration (<c>PlaceOrder</c>: activities
/// <c>Reserve</c>, then <c>Charge</c>) runs on the real .NET SDK; its trace must run from the client that started it,
/// through the scheduler's dispatches, to the worker's orchestration and activity spans.
/// </summary>
public sealed class TelemetryTests(TelemetryFixture run) : IClassFixture<TelemetryFixture>
{
    [Fact]
    public void TheClientsCreateSpanStartsTheTrace()
    {
        var create = run.SdkSpan("create_orchestration:PlaceOrder", ActivityKind.Producer);

        Assert.Equal(default, create.ParentSpanId);
        Assert.Equal(run.Trace, create.TraceId);
    }

    [Fact]
    public void EveryOrchestratorDispatchIsAChildOfTheClientsCreateSpan()
    {
        var create = run.SdkSpan("create_orchestration:PlaceOrder", ActivityKind.Producer);

        // One dispatch per episode: the start, then after each activity's result.
        var dispatches = run.SchedulerSpans.Where(s => s.DisplayName == "dispatch orchestrator PlaceOrder").ToList();

        Assert.NotEmpty(dispatches);
        Assert.All(dispatches, d =>
        {
            Assert.Equal(ActivityKind.Producer, d.Kind);
            Assert.Equal(create.TraceId, d.TraceId);
            Assert.Equal(create.SpanId, d.ParentSpanId);
            Assert.Equal(run.Hub, d.GetTagItem("dts.hub"));
            Assert.Equal("orchestrator", d.GetTagItem("dts.type"));
            Assert.Equal("PlaceOrder", d.GetTagItem("dts.name"));
        });
    }

    [Fact]
    public void TheWorkersOrchestrationSpanIsAChildOfTheClientsCreateSpan()
    {
        var create = run.SdkSpan("create_orchestration:PlaceOrder", ActivityKind.Producer);

        var orchestration = run.SdkSpan("orchestration:PlaceOrder", ActivityKind.Server);

        Assert.Equal(create.TraceId, orchestration.TraceId);
        Assert.Equal(create.SpanId, orchestration.ParentSpanId);
        Assert.Equal("Completed", orchestration.GetTagItem("durabletask.task.status"));
    }

    [Theory]
    [InlineData("Reserve")]
    [InlineData("Charge")]
    public void EachActivityIsDispatchedAndRunInTheSameTrace(string activity)
    {
        // The orchestration schedules the activity under a span of its own (kind Client); the scheduler's dispatch and
        // the worker's execution (kind Server) are both its children.
        var scheduled = run.SdkSpan($"activity:{activity}", ActivityKind.Client);
        var executed = run.SdkSpan($"activity:{activity}", ActivityKind.Server);

        var dispatch = Assert.Single(run.SchedulerSpans, s => s.DisplayName == $"dispatch activity {activity}");

        Assert.Equal(ActivityKind.Producer, dispatch.Kind);
        Assert.Equal(run.Trace, dispatch.TraceId);
        Assert.Equal(scheduled.SpanId, dispatch.ParentSpanId);
        Assert.Equal(run.Trace, executed.TraceId);
        Assert.Equal(scheduled.SpanId, executed.ParentSpanId);
        Assert.Equal(run.Trace, scheduled.TraceId);
    }

    [Fact]
    public void EverySpanOfTheInstanceOnEitherSideIsInTheClientsTrace()
    {
        var spans = run.SchedulerSpans.Concat(run.SdkSpans).ToList();

        Assert.True(spans.Count >= 9, $"Only {spans.Count} spans: {string.Join(", ", spans.Select(s => s.DisplayName))}");
        Assert.All(spans, s => Assert.Equal(run.Trace, s.TraceId));
    }

    [Theory]
    [InlineData("Reserve")]
    [InlineData("Charge")]
    public void TheOrchestrationSpanParentsEveryActivityItScheduledInAnyEpisode(string activity)
    {
        // The worker gives its orchestration span the same id in every episode only when the scheduler hands back the
        // orchestrationTraceContext of the previous OrchestratorResponse; otherwise activities scheduled before the
        // last episode hang off a span that is never exported.
        var orchestration = run.SdkSpan("orchestration:PlaceOrder", ActivityKind.Server);

        var scheduled = run.SdkSpan($"activity:{activity}", ActivityKind.Client);

        Assert.True(orchestration.SpanId == scheduled.ParentSpanId,
            $"activity:{activity} (Client) has parent {scheduled.ParentSpanId}, not the exported orchestration span " +
            $"{orchestration.SpanId}: the scheduler did not return the worker's orchestrationTraceContext in the next episode.");
    }

    [Theory]
    [InlineData("orchestrator", 1)]
    [InlineData("activity", 2)]
    public void DispatchedAndCompletedWorkItemsAreCountedByType(string type, long atLeast)
    {
        // Counters are process-wide (other schedulers in this test process add to them): at least this run's work.
        Assert.True(run.Sum("dts.workitems.dispatched", type) >= atLeast, $"dts.workitems.dispatched[{type}] = {run.Sum("dts.workitems.dispatched", type)}");
        Assert.True(run.Sum("dts.workitems.completed", type) >= atLeast, $"dts.workitems.completed[{type}] = {run.Sum("dts.workitems.completed", type)}");
    }

    [Fact]
    public void GaugesReportTheHubsBacklogWorkersAndInstancesByStatus()
    {
        var backlog = run.HubPoints("dts.backlog");
        Assert.Equal(["activity", "entity", "orchestrator"], backlog.Select(p => (string)p.Tags["type"]!).Order());
        Assert.All(backlog, p => Assert.Equal(0L, p.Value));

        var workers = Assert.Single(run.HubPoints("dts.workers.connected"));
        Assert.True(workers.Value >= 1, $"dts.workers.connected = {workers.Value} while the worker is connected");

        var instances = Assert.Single(run.HubPoints("dts.instances"));
        Assert.Equal("Completed", instances.Tags["status"]);
        Assert.Equal(1L, instances.Value);
    }
}

/// <summary>
/// A scheduler hosted in-process with in-memory trace and metric exporters, and an app (SDK client and worker) whose
/// own tracer provider exports the SDK's spans. Runs one <c>PlaceOrder</c> orchestration, reads the metrics while the
/// worker is still connected, then stops everything and keeps what was exported.
/// </summary>
public sealed class TelemetryFixture : IAsyncLifetime
{
    /// <summary>The Durable Task SDK's activity source (client and worker spans).</summary>
    const string SdkSource = "Microsoft.DurableTask";

    readonly List<Activity> _exportedBySchedulerHost = new();
    readonly List<MetricSnapshot> _metrics = new();
    readonly List<Activity> _exportedByApp = new();

    public string Hub { get; } = $"telemetry-{Guid.NewGuid():N}"[..30];
    public string InstanceId { get; private set; } = "";

    /// <summary>The trace id of the client's <c>create_orchestration</c> span.</summary>
    public ActivityTraceId Trace { get; private set; }

    /// <summary>The scheduler's own spans (<c>DurableTask.Scheduler</c>) of this instance, as its exporter received them.</summary>
    public IReadOnlyList<Activity> SchedulerSpans { get; private set; } = [];

    /// <summary>The SDK's spans (client and worker) of this instance.</summary>
    public IReadOnlyList<Activity> SdkSpans { get; private set; } = [];

    /// <summary>The metrics of the scheduler's meter, collected once while the worker was connected.</summary>
    public IReadOnlyList<MetricSnapshot> Metrics { get; private set; } = [];

    public Activity SdkSpan(string name, ActivityKind kind)
    {
        var matches = SdkSpans.Where(s => s.DisplayName == name && s.Kind == kind).ToList();
        Assert.True(matches.Count == 1, $"{matches.Count} SDK spans '{name}' ({kind}); the SDK exported: " +
            string.Join(", ", SdkSpans.Select(s => $"{s.DisplayName} ({s.Kind})")));
        return matches[0];
    }

    /// <summary>The counter's total for one work item type.</summary>
    public long Sum(string metric, string type) =>
        Last(metric).MetricPoints.Where(p => Tags(p).GetValueOrDefault("type") as string == type).Sum(p => p.GetSumLong());

    /// <summary>The gauge's points for this fixture's task hub.</summary>
    public List<(Dictionary<string, object?> Tags, long Value)> HubPoints(string metric) =>
        Last(metric).MetricPoints
            .Select(p => (Tags: Tags(p), Value: p.GetGaugeLastValueLong()))
            .Where(p => p.Tags.GetValueOrDefault("hub") as string == Hub)
            .ToList();

    MetricSnapshot Last(string metric) =>
        Metrics.LastOrDefault(m => m.Name == metric)
        ?? throw new Xunit.Sdk.XunitException($"'{metric}' was not exported; exported: {string.Join(", ", Metrics.Select(m => m.Name).Distinct())}");

    static Dictionary<string, object?> Tags(MetricPoint point)
    {
        var tags = new Dictionary<string, object?>();
        foreach (var tag in point.Tags)
        {
            tags[tag.Key] = tag.Value;
        }

        return tags;
    }

    public async Task InitializeAsync()
    {
        var scheduler = await StartSchedulerAsync();
        try
        {
            // The application's side exports the SDK's spans, as an app with its own tracing would.
            using (Sdk.CreateTracerProviderBuilder().AddSource(SdkSource).AddInMemoryExporter(_exportedByApp).Build())
            {
                using var app = await StartAppAsync(scheduler.Address);
                var client = app.Services.GetRequiredService<DurableTaskClient>();

                InstanceId = await client.ScheduleNewOrchestrationInstanceAsync("PlaceOrder", "book");
                var done = await client.CompletedAsync(InstanceId);
                Assert.Equal("charged for reserved book", done.ReadOutputAs<string>());

                scheduler.App.Services.GetRequiredService<MeterProvider>().ForceFlush();
                Metrics = _metrics.Where(m => m.MeterName == SchedulerTelemetry.Name).ToList();
                await app.StopAsync();
            }
        }
        finally
        {
            // Disposing the scheduler disposes its providers: nothing is exported into the lists after this.
            await scheduler.App.StopAsync();
            await scheduler.App.DisposeAsync();
        }

        SchedulerSpans = _exportedBySchedulerHost
            .Where(s => s.Source.Name == SchedulerTelemetry.Name && s.GetTagItem("dts.instance_id") as string == InstanceId)
            .ToList();
        SdkSpans = _exportedByApp
            .Where(s => s.GetTagItem("durabletask.task.instance_id") as string == InstanceId)
            .ToList();
        Trace = SdkSpan("create_orchestration:PlaceOrder", ActivityKind.Producer).TraceId;
    }

    public Task DisposeAsync() => Task.CompletedTask;

    async Task<(WebApplication App, string Address)> StartSchedulerAsync()
    {
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var grpcPort = FreePort();
            var httpPort = FreePort();
            string[] args =
            [
                $"--Scheduler:GrpcPort={grpcPort}",
                $"--Scheduler:HttpPort={httpPort}",
                "--Scheduler:BindAddress=127.0.0.1",
                $"--DTS_TASK_HUB_NAMES={Hub}",
                "--Logging:LogLevel:Default=Warning",
            ];
            var app = SchedulerHost.Build(args, builder => builder.Services.AddOpenTelemetry()
                .WithTracing(t => t.AddInMemoryExporter(_exportedBySchedulerHost))
                .WithMetrics(m => m.AddInMemoryExporter(_metrics)));
            try
            {
                await app.StartAsync();
                return (app, $"http://127.0.0.1:{grpcPort}");
            }
            catch (IOException e)
            {
                // A port was taken between picking and binding: pick again.
                last = e;
                await app.DisposeAsync();
            }
        }

        throw new InvalidOperationException("Could not bind the scheduler to free ports.", last);
    }

    async Task<IHost> StartAppAsync(string address)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddDurableTaskWorker(worker =>
        {
            worker.AddTasks(tasks =>
            {
                tasks.AddOrchestratorFunc<string, string>("PlaceOrder", async (context, item) =>
                {
                    var reservation = await context.CallActivityAsync<string>("Reserve", item);
                    return await context.CallActivityAsync<string>("Charge", reservation);
                });
                tasks.AddActivityFunc<string, string>("Reserve", (_, item) => $"reserved {item}");
                tasks.AddActivityFunc<string, string>("Charge", (_, reservation) => $"charged for {reservation}");
            });
            worker.UseGrpc(o =>
            {
                o.Address = address;
                o.Interceptors.Add(new TaskHubInterceptor(Hub));
            });
        });
        builder.Services.AddDurableTaskClient(client => client.UseGrpc(o =>
        {
            o.Address = address;
            o.Interceptors.Add(new TaskHubInterceptor(Hub));
        }));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
