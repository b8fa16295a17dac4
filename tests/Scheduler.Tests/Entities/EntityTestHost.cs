using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Grpc.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableTask.Scheduler.Tests.Entities;

/// <summary>A scheduler with dynamic task hubs and quick redelivery, plus hosts whose SDK has entity support on.</summary>
public sealed class EntityTestHost : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true", "--Scheduler:RedeliveryDelay=00:00:00.200"];

    public CallInvoker Invoker(string hub) => Channel.Intercept(new TaskHubInterceptor(hub));

    /// <summary>
    /// Starts a worker and client host. <paramref name="explicitEntityEvents"/> selects the encoding of entity
    /// messages in orchestrations: explicit entity events (as the managed-service packages configure) or the JSON
    /// external-event encoding of plain gRPC workers.
    /// </summary>
    public async Task<WorkerHost> StartWorkerAsync(string hub, bool explicitEntityEvents, Action<DurableTaskRegistry> tasks)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var channel = GrpcChannel.ForAddress(Address);
        var invoker = channel.Intercept(new TaskHubInterceptor(hub));
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(tasks);
            b.Configure(o => o.EnableEntitySupport = true);
            b.UseGrpc(o =>
            {
                o.CallInvoker = invoker;
                if (explicitEntityEvents) o.ConfigureForAzureManaged();
            });
        });
        builder.Services.AddDurableTaskClient(b =>
        {
            b.Configure(o => o.EnableEntitySupport = true);
            b.UseGrpc(o => o.CallInvoker = invoker);
        });
        var host = builder.Build();
        await host.StartAsync();
        return new WorkerHost(host, channel, host.Services.GetRequiredService<DurableTaskClient>());
    }

    /// <summary>A client alone (no worker), for callers that must not take work items.</summary>
    public DurableTaskClient StartClient(string hub)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var invoker = Invoker(hub);
        services.AddDurableTaskClient(b =>
        {
            b.Configure(o => o.EnableEntitySupport = true);
            b.UseGrpc(o => o.CallInvoker = invoker);
        });
        return services.BuildServiceProvider().GetRequiredService<DurableTaskClient>();
    }

}

public sealed class WorkerHost(IHost host, GrpcChannel channel, DurableTaskClient client) : IAsyncDisposable
{
    public DurableTaskClient Client { get; } = client;

    public async Task<OrchestrationMetadata> RunAsync(string name, object? input = null, TimeSpan? timeout = null)
    {
        var id = await Client.ScheduleNewOrchestrationInstanceAsync(name, input);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        return await Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, cts.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopWithinAsync(TimeSpan.FromSeconds(10));

        host.Dispose();
        channel.Dispose();
    }

    /// <summary>Cuts the host off abruptly, as a crashed process would: in-flight work items are never completed.</summary>
    public void Kill()
    {
        channel.Dispose();
        host.Dispose();
    }
}
