using System.Net;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.Api;
using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Protocol;
using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace DurableTask.Scheduler.Hosting;

/// <summary>Builds the scheduler's web application: gRPC on one port, HTTP/1.1 (health, API) on another.</summary>
public static class SchedulerHost
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddScheduler();
        configure?.Invoke(builder);

        var app = builder.Build();
        app.MapScheduler();
        return app;
    }

    public static WebApplicationBuilder AddScheduler(this WebApplicationBuilder builder)
    {
        ServiceDefaultsExtensions.AddTelemetrySource(SchedulerTelemetry.Name);
        builder.AddServiceDefaults();
        QuietRequestLogging(builder);

        var options = ReadOptions(builder.Configuration);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => StoreFactory.Create(options, builder.Configuration, sp));
        builder.Services.AddSingleton<TaskHubRegistry>();
        // Stateless: one instance serves every call instead of one built per call.
        builder.Services.AddSingleton<SidecarService>();
        builder.Services.AddSingleton<DirectCompletions>();
        builder.Services.AddSingleton<SchedulerReadiness>();
        builder.Services.AddHostedService<SchedulerStartup>();
        builder.Services.AddSingleton<ScaleOut.HubOwnership>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ScaleOut.HubOwnership>());
        builder.Services.AddSingleton<ScaleOut.ReplicaForwarder>();
        builder.Services.AddHostedService<RetentionService>();
        builder.Services.AddHostedService<MemoryTrimmer>();

        builder.Services.AddGrpc(o =>
        {
            // Chunked orchestrator completions are up to ~4 MB each; payload limits are enforced with clear messages
            // after receipt, so the transport limit only guards memory.
            o.MaxReceiveMessageSize = Math.Max(16 * 1024 * 1024, options.MaxPayloadBytes * 4);
            o.MaxSendMessageSize = null;
            o.EnableDetailedErrors = false;
        });
        builder.AddSchedulerSecurity(options);
        builder.Services.AddStrictMessageBinding();

        builder.WebHost.ConfigureKestrel(k =>
        {
            // Limits per connection and request come from Scheduler:Limits (AddSchedulerSecurity).
            var certificate = k.ApplicationServices.GetRequiredService<SchedulerTls>().Certificate;
            Listen(k, options.BindAddress, options.GrpcPort, HttpProtocols.Http2, certificate);
            Listen(k, options.BindAddress, options.HttpPort, HttpProtocols.Http1, certificate);
        });
        return builder;
    }

    public static WebApplication MapScheduler(this WebApplication app)
    {
        var security = app.Services.GetRequiredService<SchedulerSecurity>();
        bool replicas = app.Services.GetRequiredService<ScaleOut.HubOwnership>().Enabled;
        if (!security.Enabled && !replicas)
            app.UseMiddleware<GrpcDirectDispatch>(app.Services, security.GrpcBodyLimit(app.Services.GetRequiredService<SchedulerOptions>()));
        app.UseRouting();
        app.UseSchedulerSecurity();
        // Replicas (a store with hub leases): calls for hubs owned elsewhere go to their owner.
        if (replicas)
            app.Use(app.Services.GetRequiredService<ScaleOut.ReplicaForwarder>().InvokeAsync);
        app.MapDefaultEndpoints();
        app.MapGrpcService<SidecarService>();
        app.MapSchedulerApi();
        app.MapIdentityApi();
        app.MapGet("/healthz", (SchedulerReadiness ready, TaskHubRegistry hubs, ScaleOut.HubOwnership ownership) =>
            !ready.IsReady ? Results.Text("Starting", statusCode: StatusCodes.Status503ServiceUnavailable)
            : !hubs.StoresHealthy || !ownership.Healthy ? Results.Text("Store unavailable", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("Healthy"));
        return app;
    }

    /// <summary>
    /// Unless the configuration sets levels for <c>Microsoft.AspNetCore*</c> itself, ASP.NET Core logs warnings and
    /// errors only, and its hosting layer nothing: at the framework's default level every gRPC call would write two
    /// log lines, and with hosting logs on at any level each request starts a diagnostic activity of its own.
    /// Traces still get their activities when a tracer listens (OTEL_EXPORTER_OTLP_ENDPOINT).
    /// </summary>
    static void QuietRequestLogging(WebApplicationBuilder builder)
    {
        bool configured = builder.Configuration.GetSection("Logging:LogLevel").GetChildren()
            .Any(c => c.Key.StartsWith("Microsoft.AspNetCore", StringComparison.OrdinalIgnoreCase));
        if (configured) return;
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
    }

    internal static SchedulerOptions ReadOptions(IConfiguration configuration)
    {
        var options = new SchedulerOptions();
        configuration.GetSection(SchedulerOptions.Section).Bind(options);

        var hubNames = configuration["DTS_TASK_HUB_NAMES"];
        if (!string.IsNullOrWhiteSpace(hubNames))
        {
            options.TaskHubNames = hubNames.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        }

        if (bool.TryParse(configuration["DTS_USE_DYNAMIC_TASK_HUBS"], out var dynamicHubs))
        {
            options.UseDynamicTaskHubs = dynamicHubs;
        }

        Validate(options);
        return options;
    }

    static void Validate(SchedulerOptions o)
    {
        if (o.GrpcPort is < 0 or > 65535 || o.HttpPort is < 0 or > 65535)
            throw new InvalidOperationException("Scheduler:GrpcPort and Scheduler:HttpPort must be between 0 and 65535.");
        if (o.GrpcPort == o.HttpPort && o.GrpcPort != 0)
            throw new InvalidOperationException($"Scheduler:GrpcPort and Scheduler:HttpPort must differ (both are {o.GrpcPort}).");
        if (o.RetentionCheckInterval <= TimeSpan.Zero)
            throw new InvalidOperationException("Scheduler:RetentionCheckInterval must be positive.");
        if (o.MemoryTrimInterval > TimeSpan.Zero && o.MemoryTrimInterval < TimeSpan.FromSeconds(1))
            throw new InvalidOperationException($"Scheduler:MemoryTrimInterval must be 0 (off) or at least one second, not {o.MemoryTrimInterval}.");
        if (o.MaxPayloadBytes <= 0)
            throw new InvalidOperationException("Scheduler:MaxPayloadBytes must be positive.");
        if (o.MaxOrchestrationWorkItemsPerWorker < 0)
            throw new InvalidOperationException($"Scheduler:MaxOrchestrationWorkItemsPerWorker must be 0 (no cap) or positive, not {o.MaxOrchestrationWorkItemsPerWorker}.");
        if (o.MaxFanInHold < TimeSpan.Zero || o.MaxFanInHold > TimeSpan.FromMinutes(1))
            throw new InvalidOperationException($"Scheduler:MaxFanInHold must be between 00:00:00 (off) and 00:01:00, not {o.MaxFanInHold}.");
        o.ScaleOut.Validate();
        if (!StoreFactory.Supported.Contains(o.Store.ToLowerInvariant()))
            throw new InvalidOperationException($"Scheduler:Store '{o.Store}' is not supported. Supported stores: {string.Join(", ", StoreFactory.Supported)}.");
        foreach (var hub in o.TaskHubNames)
        {
            if (!TaskHubRegistry.IsValidName(hub))
                throw new InvalidOperationException($"Task hub name '{hub}' is invalid: use 1-64 letters, digits, '-' or '_'.");
        }
    }

    static void Listen(KestrelServerOptions k, string bindAddress, int port, HttpProtocols protocols, X509Certificate2? certificate)
    {
        void Configure(ListenOptions l)
        {
            l.Protocols = protocols;
            if (certificate is not null) l.UseHttps(certificate);
        }

        if (string.Equals(bindAddress, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (port == 0)
                k.Listen(IPAddress.Loopback, 0, Configure);
            else
                k.ListenLocalhost(port, Configure);
        }
        else if (bindAddress is "*" or "0.0.0.0" or "+")
        {
            k.ListenAnyIP(port, Configure);
        }
        else
        {
            k.Listen(IPAddress.Parse(bindAddress), port, Configure);
        }
    }
}

sealed class SchedulerStartup(TaskHubRegistry hubs, SchedulerReadiness readiness) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await hubs.InitializeAsync(cancellationToken);
        SchedulerGauges.Observe(hubs);
        // With hub leases, the hubs open as their leases are taken, after the server listens (HubOwnership marks ready).
        if (!hubs.Leased) readiness.MarkReady();
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        SchedulerGauges.Unobserve(hubs);
        return hubs.StopAsync();
    }
}
