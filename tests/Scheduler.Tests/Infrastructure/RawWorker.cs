using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Infrastructure;

/// <summary>A hand-driven worker speaking the raw protocol: one <c>GetWorkItems</c> stream read item by item.</summary>
public sealed class RawWorker : IAsyncDisposable
{
    readonly AsyncServerStreamingCall<P.WorkItem> _call;
    readonly CancellationTokenSource _cts = new();

    RawWorker(P.TaskHubSidecarService.TaskHubSidecarServiceClient client, AsyncServerStreamingCall<P.WorkItem> call)
    {
        Client = client;
        _call = call;
    }

    public P.TaskHubSidecarService.TaskHubSidecarServiceClient Client { get; }

    public static async Task<RawWorker> ConnectAsync(P.TaskHubSidecarService.TaskHubSidecarServiceClient client, P.GetWorkItemsRequest? request = null)
    {
        await client.HelloAsync(new Empty(), deadline: DateTime.UtcNow.AddSeconds(30));
        var call = client.GetWorkItems(request ?? new P.GetWorkItemsRequest());
        return new RawWorker(client, call);
    }

    /// <summary>Reads work items until one satisfies <paramref name="match"/>; health pings and others are skipped.</summary>
    public async Task<P.WorkItem> NextAsync(Func<P.WorkItem, bool> match, string what, TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        cts.CancelAfter(timeout ?? Waits.Default);
        try
        {
            while (await _call.ResponseStream.MoveNext(cts.Token))
            {
                if (match(_call.ResponseStream.Current)) return _call.ResponseStream.Current;
            }
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cts.IsCancellationRequested)
        {
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
        }

        throw new TimeoutException($"No work item matching {what} arrived within {(timeout ?? Waits.Default).TotalSeconds} s.");
    }

    public Task<P.WorkItem> NextOrchestratorAsync(string instanceId) =>
        NextAsync(w => w.OrchestratorRequest?.InstanceId == instanceId, $"an orchestrator request for '{instanceId}'");

    public Task<P.WorkItem> NextActivityAsync(string instanceId) =>
        NextAsync(w => w.ActivityRequest?.OrchestrationInstance?.InstanceId == instanceId, $"an activity request for '{instanceId}'");

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _call.Dispose();
        _cts.Dispose();
    }
}
