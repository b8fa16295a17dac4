using Microsoft.Extensions.Configuration;

namespace DurableTask.Dashboard.Tests;

/// <summary>Where the dashboard looks for the scheduler's API.</summary>
public sealed class ConfigurationTests
{
    static Uri Resolve(params (string Key, string Value)[] settings) =>
        DashboardApp.ApiAddress(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build());

    [Fact]
    public void DefaultsToTheLocalScheduler() => Assert.Equal(new Uri("http://localhost:8081/"), Resolve());

    [Fact]
    public void UsesServiceDiscoveryUnderTheAppHost() =>
        Assert.Equal(new Uri("http://localhost:41234/"), Resolve(("services:scheduler:http:0", "http://localhost:41234")));

    [Fact]
    public void ExplicitAddressWins() =>
        Assert.Equal(new Uri("http://scheduler.internal:9001/"),
            Resolve(("services:scheduler:http:0", "http://localhost:41234"), ("Scheduler:ApiAddress", "http://scheduler.internal:9001")));
}
