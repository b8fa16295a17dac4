using System.Net;
using DurableTask.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask.Testing.Sidecar;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;

namespace DurableTask.Benchmarks.Backends;

/// <summary>
/// Hosts the reference backend (<c>Microsoft.DurableTask.InProcessTestHost</c>'s gRPC sidecar and in-memory service)
/// the way the package hosts it itself, on a TCP port, with the dispatcher throttle removed.
/// </summary>
static class ReferenceBackend
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        if (options.Port <= 0)
        {
            Console.Error.WriteLine("backend-reference needs --port");
            return 2;
        }

        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // The scheduler's hosting default (SchedulerHost): no request logging, so no diagnostic activity per request.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);

        // Same transport settings as our scheduler, so neither side wins on Kestrel or gRPC limits.
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port, l => l.Protocols = HttpProtocols.Http2);
            k.Limits.Http2.MaxStreamsPerConnection = 1000;
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
            o.MaxSendMessageSize = null;
        });

        builder.Services.AddSingleton(sp => new UnthrottledOrchestrationService(
            new InMemoryOrchestrationService(sp.GetRequiredService<ILoggerFactory>())));
        builder.Services.AddSingleton<IOrchestrationService>(sp => sp.GetRequiredService<UnthrottledOrchestrationService>());
        builder.Services.AddSingleton<IOrchestrationServiceClient>(sp => sp.GetRequiredService<UnthrottledOrchestrationService>());
        builder.Services.Configure<TaskHubGrpcServerOptions>(o => o.Mode = TaskHubGrpcServerMode.ApiServerAndDispatcher);
        builder.Services.AddSingleton<TaskHubGrpcServer>();

        await using var app = builder.Build();
        app.MapGrpcService<TaskHubGrpcServer>();

        await app.StartAsync();
        Ready.Announce(new([Environment.ProcessId], [$"http://127.0.0.1:{options.Port}"], RedisPid: null));
        await Ready.WaitForShutdownAsync(app.Lifetime.ApplicationStopping);
        await app.StopAsync();
        return 0;
    }
}
