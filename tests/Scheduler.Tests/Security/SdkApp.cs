using DurableTask.Scheduler.Tests.Infrastructure;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>The real .NET SDK (client, optionally a worker) on a given gRPC channel, addressing one task hub.</summary>
public sealed class SdkApp : IAsyncDisposable
{
    readonly IHost _host;

    SdkApp(IHost host) => _host = host;

    public DurableTaskClient Client => _host.Services.GetRequiredService<DurableTaskClient>();

    /// <summary>Tasks used by the security tests: <c>Greet</c> calls the activity <c>Hello</c>; <c>WaitForApproval</c> waits for an event.</summary>
    public static void SampleTasks(DurableTaskRegistry r)
    {
        r.AddActivityFunc<string, string>("Hello", (_, name) => $"Hello, {name}!");
        r.AddOrchestratorFunc<string, string>("Greet", async (ctx, name) => await ctx.CallActivityAsync<string>("Hello", name));
        r.AddOrchestratorFunc<string?, string>("WaitForApproval", async (ctx, _) => await ctx.WaitForExternalEvent<string>("approval"));
    }

    public static async Task<SdkApp> StartAsync(GrpcChannel channel, string? hub, bool worker, params Interceptor[] interceptors)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        if (worker)
        {
            builder.Services.AddDurableTaskWorker(b =>
            {
                b.AddTasks(SampleTasks);
                b.UseGrpc(o =>
                {
                    o.Channel = channel;
                    if (hub is not null) o.Interceptors.Add(new TaskHubInterceptor(hub));
                    foreach (var i in interceptors) o.Interceptors.Add(i);
                });
            });
        }

        builder.Services.AddDurableTaskClient(b => b.UseGrpc(o =>
        {
            o.Channel = channel;
            if (hub is not null) o.Interceptors.Add(new TaskHubInterceptor(hub));
            foreach (var i in interceptors) o.Interceptors.Add(i);
        }));
        var host = builder.Build();
        await host.StartAsync();
        return new SdkApp(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopWithinAsync(TimeSpan.FromSeconds(15));

        _host.Dispose();
    }
}
