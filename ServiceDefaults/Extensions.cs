using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Shared wiring for every service of the topology: OpenTelemetry (exported over OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, as the AppHost does), health endpoints, service discovery and HTTP
/// resilience.
/// </summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>Readiness: every registered health check.</summary>
    public const string HealthPath = "/health";

    /// <summary>Liveness: only the checks tagged <c>live</c>.</summary>
    public const string AlivePath = "/alive";

    /// <summary>The Durable Task SDK's own traces (orchestration and activity spans in workers and clients).</summary>
    public const string DurableTaskSdkSource = "Microsoft.DurableTask";

    /// <summary>
    /// The setting that turns the traces of Blazor circuits back on: the SignalR hub calls of each circuit, the
    /// components' routes and events, and the circuit's own requests under <c>/_blazor</c>. Off by default, since one
    /// open dashboard page makes a trace every few seconds and buries the orchestrations' traces.
    /// </summary>
    public const string TraceBlazorCircuitsSetting = "Telemetry:TraceBlazorCircuits";

    static readonly HashSet<string> ExtraSources = new(StringComparer.Ordinal);

    /// <summary>
    /// Adds an <see cref="System.Diagnostics.ActivitySource"/> and meter name to export on top of the defaults (traces
    /// and metrics). Names may be added before or after <see cref="AddServiceDefaults{TBuilder}"/>, up to the moment
    /// the host is built.
    /// </summary>
    public static void AddTelemetrySource(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        lock (ExtraSources) ExtraSources.Add(name);
    }

    static string[] TelemetrySources()
    {
        lock (ExtraSources) return ExtraSources.ToArray();
    }

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            // Retries, timeouts and a circuit breaker for request/response calls. Long-lived streaming calls (gRPC
            // work-item streams) must not go through an IHttpClientFactory client with these defaults: the SDK's
            // UseGrpc(address) builds its own channel, which is the intended way.
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
        return builder;
    }

    /// <summary>
    /// Describes what to trace and measure, and turns telemetry on only where it goes somewhere: with an OTLP endpoint
    /// (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>), or when the host adds its own exporter through
    /// <c>AddOpenTelemetry()</c>. Without a listener, spans and measurements cost nothing on the hot paths.
    /// </summary>
    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var services = builder.Services;
        bool traceCircuits = builder.Configuration.GetValue<bool>(TraceBlazorCircuitsSetting);
        services.ConfigureOpenTelemetryMeterProvider(metrics => metrics
            .AddAspNetCoreInstrumentation()
            .AddHttpClientInstrumentation()
            .AddRuntimeInstrumentation());
        services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(builder.Environment.ApplicationName)
            .AddSource(DurableTaskSdkSource)
            .AddAspNetCoreInstrumentation(o =>
            {
                o.Filter = ctx => !IsHealthRequest(ctx.Request.Path) && (traceCircuits || !IsCircuitRequest(ctx.Request.Path));
                // The circuits' SignalR hub calls and the components' circuit, route and event spans.
                o.EnableAspNetCoreSignalRSupport = traceCircuits;
                o.EnableRazorComponentsSupport = traceCircuits;
            })
            .AddHttpClientInstrumentation());

        // Deferred to the moment the providers are built, so names added after AddServiceDefaults are exported too.
        services.ConfigureOpenTelemetryMeterProvider((_, metrics) => metrics.AddMeter(TelemetrySources()));
        services.ConfigureOpenTelemetryTracerProvider((_, tracing) => tracing.AddSource(TelemetrySources()));

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Logging.AddOpenTelemetry(logging =>
            {
                logging.IncludeFormattedMessage = true;
                logging.IncludeScopes = true;
            });

            // Logs, traces and metrics; protocol, headers and resource attributes come from the standard OTEL_* variables.
            services.AddOpenTelemetry().WithMetrics().WithTracing().UseOtlpExporter();
        }

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        return builder;
    }

    /// <summary>Maps <c>/health</c> (all checks) and <c>/alive</c> (liveness checks). Both answer only a status word.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthPath);
        app.MapHealthChecks(AlivePath, new HealthCheckOptions { Predicate = r => r.Tags.Contains("live") });
        return app;
    }

    /// <summary>
    /// The first address of a named endpoint of a referenced service, as the AppHost passes it
    /// (<c>services__{service}__{endpoint}__0</c>), e.g. <c>GetServiceEndpoint("scheduler", "grpc")</c> for a gRPC
    /// channel that cannot go through service discovery's HTTP handler. Null when the service is not referenced.
    /// </summary>
    public static Uri? GetServiceEndpoint(this IConfiguration configuration, string service, string endpoint)
    {
        var value = configuration[$"services:{service}:{endpoint}:0"];
        return Uri.TryCreate(value, UriKind.Absolute, out var uri) ? uri : null;
    }

    /// <summary>A Blazor circuit's connection (negotiation, WebSocket, long polling) or the framework's scripts.</summary>
    static bool IsCircuitRequest(PathString path) => path.StartsWithSegments("/_blazor") || path.StartsWithSegments("/_framework");

    static bool IsHealthRequest(PathString path) =>
        path.StartsWithSegments(HealthPath) || path.StartsWithSegments(AlivePath) || path.StartsWithSegments("/healthz");
}
