using System.Net.Http.Json;
using System.Text.Json;
using Grpc.Net.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>What the storage tests read of a running scheduler: the default hub's instance counts and an instance's history.</summary>
static class HubProbe
{
    /// <summary>The default hub's instances, resident or only in the store, and those in memory (<c>GET /api/v1/taskhubs</c>).</summary>
    public static async Task<(int Instances, int InMemory)> HubAsync(HttpClient http)
    {
        var hubs = await http.GetFromJsonAsync<JsonElement>("api/v1/taskhubs");
        var hub = hubs.EnumerateArray().Single(h => h.GetProperty("name").GetString() == "default");
        return (hub.GetProperty("instanceCount").GetInt32(), hub.GetProperty("instancesInMemory").GetInt32());
    }

    /// <summary>An instance's whole history, as the gRPC API streams it.</summary>
    public static async Task<List<P.HistoryEvent>> HistoryAsync(SchedulerProcess scheduler, string instanceId)
    {
        using var channel = GrpcChannel.ForAddress(scheduler.Address);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        var events = new List<P.HistoryEvent>();
        using var call = client.StreamInstanceHistory(new P.StreamInstanceHistoryRequest { InstanceId = instanceId });
        while (await call.ResponseStream.MoveNext(CancellationToken.None)) events.AddRange(call.ResponseStream.Current.Events);
        return events;
    }
}
