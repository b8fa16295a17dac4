using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using OpenTelemetry.Trace;
using static Microsoft.Playwright.Assertions;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// What the dashboard's own tracing exports while a person uses it in a real browser: by default nothing of its Blazor
/// circuits (SignalR hub calls, component routes and events, the circuit's connection), so the orchestrations' traces
/// stay easy to find; with <c>Telemetry:TraceBlazorCircuits=true</c> the circuit's spans are back.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class DashboardTraceTests(DashboardFixture fx, BrowserFixture browser, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    static readonly string[] CircuitSources = ["Microsoft.AspNetCore.SignalR.Server", "Microsoft.AspNetCore.Components", "Microsoft.AspNetCore.Components.Server.Circuits"];

    /// <summary>Runs a dashboard with an in-memory trace exporter, browses two pages, and returns what it exported.</summary>
    async Task<List<Activity>> BrowseAndCollectAsync(params string[] settings)
    {
        var exported = new List<Activity>();
        int port = FreePort();
        var dashboard = DashboardApp.Build(
            [$"--urls=http://127.0.0.1:{port}", $"--Scheduler:ApiAddress={fx.ApiAddress}", "--Logging:LogLevel:Default=Warning", .. settings],
            builder => builder.Services.AddOpenTelemetry().WithTracing(t => t.AddInMemoryExporter(exported)));
        await dashboard.StartAsync();
        try
        {
            var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = $"http://127.0.0.1:{port}/" });
            var page = await context.NewPageAsync();
            await page.GotoAsync("hubs/default");
            await Expect(page.GetByTestId("status-counts")).ToBeVisibleAsync();
            // An interactive navigation inside the circuit, and a click handled by a component.
            await page.GetByRole(AriaRole.Link, new() { Name = "Orchestrations", Exact = true }).ClickAsync();
            await Expect(page.GetByTestId("orchestrations")).ToBeVisibleAsync();
            await page.GetByTestId("filter-apply").ClickAsync();
            await Expect(page.GetByTestId("orchestrations")).ToBeVisibleAsync();
            await context.CloseAsync();
        }
        finally
        {
            // Stopping the host flushes the exporter.
            await dashboard.StopAsync();
            await dashboard.DisposeAsync();
        }

        lock (exported)
        {
            // Listeners are process-wide: spans of other dashboards in this test process (a circuit of an earlier test
            // whose connection ends now) reach this exporter too. This dashboard's are the traces of its requests.
            var traces = exported.Where(s => s.Kind == ActivityKind.Server && IsPort(s.GetTagItem("server.port"), port)).Select(s => s.TraceId).ToHashSet();
            var own = exported.Where(s => traces.Contains(s.TraceId)).ToList();
            output.WriteLine($"exported: {Names(own)}");
            return own;
        }
    }

    static bool IsPort(object? tag, int port) => tag switch
    {
        int p => p == port,
        long p => p == port,
        string p => p == port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => false,
    };

    static bool IsCircuitSpan(Activity span) =>
        CircuitSources.Contains(span.Source.Name) || (span.GetTagItem("url.path") as string)?.StartsWith("/_blazor", StringComparison.Ordinal) == true;

    static string Names(IEnumerable<Activity> spans) => string.Join(", ", spans.Select(s => $"{s.Source.Name}: {s.DisplayName}").Distinct().Take(40));

    [Fact]
    public async Task TheDashboardsCircuitsAreNotTracedByDefault()
    {
        var spans = await BrowseAndCollectAsync();

        // The page's own request is traced: the exporter works, and ordinary requests still show.
        Assert.Contains(spans, s => s.Kind == ActivityKind.Server && s.GetTagItem("url.path") as string == "/hubs/default");
        var circuit = spans.Where(IsCircuitSpan).ToList();
        Assert.True(circuit.Count == 0, $"circuit spans were exported: {Names(circuit)}");
    }

    [Fact]
    public async Task ASettingTurnsTheCircuitTracesBackOn()
    {
        var spans = await BrowseAndCollectAsync("--Telemetry:TraceBlazorCircuits=true");

        Assert.True(spans.Any(IsCircuitSpan), $"no circuit span was exported; exported: {Names(spans)}");
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
