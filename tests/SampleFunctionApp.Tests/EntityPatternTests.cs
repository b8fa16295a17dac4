using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace SampleFunctionApp.Tests;

/// <summary>The entity patterns: the aggregator (a counter) and the critical section (a locked transfer).</summary>
[Collection(SamplesCollection.Name)]
public sealed class EntityPatternTests(SamplesFixture fixture)
{
    readonly HttpClient _http = fixture.Http;

    [Fact]
    public async Task Aggregator_Counter_AddsUpConcurrentSignals()
    {
        var key = $"visits-{Guid.NewGuid():N}";
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"/api/entities/counter/{key}")).StatusCode);

        var signals = Enumerable.Range(1, 10).Select(i => _http.PostAsJsonAsync($"/api/entities/counter/{key}?op=add", i));
        foreach (var response in await Task.WhenAll(signals))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        var entity = await WaitForEntityAsync("counter", key, e => e["state"]?.GetValue<int>() == 55);
        Assert.Equal("counter", entity["name"]!.GetValue<string>());
        Assert.Equal(key, entity["key"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync($"/api/entities/counter/{key}?op=reset", null)).StatusCode);
        await WaitForEntityAsync("counter", key, e => e["state"]?.GetValue<int>() == 0);

        Assert.Equal(HttpStatusCode.Accepted, (await _http.PostAsync($"/api/entities/counter/{key}?op=delete", null)).StatusCode);
        await WaitForAsync(async () => (await _http.GetAsync($"/api/entities/counter/{key}")).StatusCode == HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task CriticalSection_TransferFunds_MovesMoneyUnderLocks()
    {
        var run = Guid.NewGuid().ToString("N")[..8];
        string alice = $"alice-{run}", bob = $"bob-{run}";
        await _http.PostAsJsonAsync($"/api/entities/account/{alice}?op=deposit", 100);
        await WaitForEntityAsync("account", alice, e => e["state"]?.GetValue<int>() == 100);

        // Two transfers at once out of the same account: the locks serialize them, so neither sees a stale balance.
        var first = await _http.StartAsync("TransferFunds", new { from = alice, to = bob, amount = 30 });
        var second = await _http.StartAsync("TransferFunds", new { from = alice, to = bob, amount = 50 });
        var results = new[] { await _http.WaitForFinishAsync(first), await _http.WaitForFinishAsync(second) };

        Assert.All(results, r => Assert.Equal("Completed", r.RuntimeStatus()));
        Assert.All(results, r => Assert.True(r["output"]!["transferred"]!.GetValue<bool>()));
        Assert.Equal(20, await BalanceAsync(alice));
        Assert.Equal(80, await BalanceAsync(bob));

        // Not enough left: nothing moves.
        var third = await _http.StartAsync("TransferFunds", new { from = alice, to = bob, amount = 25 });
        var refused = await _http.WaitForFinishAsync(third);
        Assert.False(refused["output"]!["transferred"]!.GetValue<bool>());
        Assert.Equal(20, refused["output"]!["fromBalance"]!.GetValue<int>());
        Assert.Equal(20, await BalanceAsync(alice));

        // The orchestrations have finished, so no lock is left behind.
        var account = await WaitForEntityAsync("account", alice, e => e["lockedBy"] is null);
        Assert.Equal(20, account["state"]!.GetValue<int>());
    }

    async Task<int> BalanceAsync(string account)
        => (await WaitForEntityAsync("account", account, _ => true))["state"]!.GetValue<int>();

    async Task<JsonObject> WaitForEntityAsync(string name, string key, Func<JsonObject, bool> condition)
    {
        JsonObject? last = null;
        await WaitForAsync(async () =>
        {
            using var response = await _http.GetAsync($"/api/entities/{name}/{key}");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return false;
            }

            last = (JsonObject)JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            return condition(last);
        }, () => $"entity @{name}@{key}: {last?.ToJsonString() ?? "not found"}");
        return last!;
    }

    static async Task WaitForAsync(Func<Task<bool>> condition, Func<string>? describe = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"Condition not met in time. {describe?.Invoke()}");
    }
}
