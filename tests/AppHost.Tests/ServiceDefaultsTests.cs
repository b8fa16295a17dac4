using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace DurableTask.AppHost.Tests;

public sealed class ServiceDefaultsTests
{
    [Fact]
    public async Task TracesAndMetricsOfRegisteredSourcesAreExportedEvenWhenRegisteredAfterTheDefaults()
    {
        var name = $"AppHost.Tests.{Guid.NewGuid():N}";
        var activities = new List<Activity>();
        var metrics = new List<Metric>();
        var builder = Host.CreateApplicationBuilder();
        builder.AddServiceDefaults();
        ServiceDefaultsExtensions.AddTelemetrySource(name);
        builder.Services.AddOpenTelemetry()
            .WithTracing(t => t.AddInMemoryExporter(activities))
            .WithMetrics(m => m.AddInMemoryExporter(metrics));
        using var host = builder.Build();
        await host.StartAsync();

        using (var source = new ActivitySource(name))
        using (source.StartActivity("dispatch"))
        {
        }

        using (var meter = new Meter(name))
        {
            meter.CreateCounter<long>("dispatched").Add(3);
            host.Services.GetRequiredService<MeterProvider>().ForceFlush();
        }

        await host.StopAsync();
        Assert.Contains(activities, a => a.Source.Name == name && a.DisplayName == "dispatch");
        Assert.Contains(metrics, m => m.MeterName == name && m.Name == "dispatched");
    }

    [Fact]
    public void GetServiceEndpointReadsTheAddressTheAppHostPasses()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["services:scheduler:grpc:0"] = "http://localhost:5123" })
            .Build();

        Assert.Equal(new Uri("http://localhost:5123"), configuration.GetServiceEndpoint("scheduler", "grpc"));
        Assert.Null(configuration.GetServiceEndpoint("scheduler", "http"));
    }
}
