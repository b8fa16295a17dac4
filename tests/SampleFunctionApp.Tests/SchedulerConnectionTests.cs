using Microsoft.Extensions.Configuration;
using SampleFunctionApp.Hosting;

namespace SampleFunctionApp.Tests;

/// <summary>Where the sample looks for the scheduler: Aspire service discovery first, then its own settings.</summary>
public sealed class SchedulerConnectionTests
{
    static SchedulerConnection Resolve(params (string Key, string Value)[] settings) => SchedulerConnection.FromConfiguration(
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());

    [Fact]
    public void Defaults_AreLocalhost8080AndTheDefaultHub()
    {
        var connection = Resolve();
        Assert.Equal(new Uri("http://localhost:8080"), connection.Address);
        Assert.Equal("default", connection.TaskHub);
    }

    [Fact]
    public void ServiceDiscovery_WinsOverEverythingElse()
    {
        var connection = Resolve(
            ("services:scheduler:grpc:0", "http://localhost:41000"),
            ("ConnectionStrings:scheduler", "http://localhost:42000"),
            ("Scheduler:Address", "http://localhost:43000"));
        Assert.Equal(new Uri("http://localhost:41000"), connection.Address);
    }

    [Fact]
    public void ConnectionString_InTheDurableTaskSchedulerForm_GivesAddressAndHub()
    {
        var connection = Resolve(
            ("ConnectionStrings:scheduler", "Endpoint=http://localhost:42000;TaskHub=orders;Authentication=None"),
            ("Scheduler:Address", "http://localhost:43000"));
        Assert.Equal(new Uri("http://localhost:42000"), connection.Address);
        Assert.Equal("orders", connection.TaskHub);
    }

    [Fact]
    public void SchedulerSection_IsUsedWithoutServiceDiscovery_AndItsHubWins()
    {
        var connection = Resolve(
            ("ConnectionStrings:scheduler", "Endpoint=http://localhost:42000;TaskHub=orders"),
            ("Scheduler:TaskHub", "billing"));
        Assert.Equal("billing", connection.TaskHub);

        Assert.Equal(new Uri("https://scheduler.example:9443"), Resolve(("Scheduler:Address", "https://scheduler.example:9443")).Address);
    }

    [Fact]
    public void AddressWithoutScheme_IsRejectedWithAClearMessage()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Resolve(("Scheduler:Address", "localhost:8080")));
        Assert.Contains("localhost:8080", error.Message);
    }
}
