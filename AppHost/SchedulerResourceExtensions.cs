namespace Aspire.Hosting;

/// <summary>How the scheduler and the apps are declared: endpoints, settings and health checks.</summary>
public static class SchedulerResourceExtensions
{
    /// <summary>Port of the scheduler's gRPC endpoint inside a container (the emulator's port).</summary>
    public const int ContainerGrpcPort = 8080;

    /// <summary>Port of the scheduler's HTTP/1.1 endpoint (health, JSON API) inside a container.</summary>
    public const int ContainerHttpPort = 8081;

    /// <summary>
    /// Adds the scheduler project with its two endpoints: <c>grpc</c> (cleartext HTTP/2, the Durable Task protocol) and
    /// <c>http</c> (HTTP/1.1, <c>/healthz</c> and the JSON API). The scheduler binds its listeners itself from
    /// <c>Scheduler:GrpcPort</c> and <c>Scheduler:HttpPort</c>, so the ports are passed in those settings.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddScheduler(
        this IDistributedApplicationBuilder builder,
        string name,
        IResourceBuilder<ParameterResource> taskHubNames,
        IResourceBuilder<ParameterResource> store)
    {
        var publishing = builder.ExecutionContext.IsPublishMode;

        // The launch profile is ignored: the endpoints below are the whole contract, whatever Scheduler/Properties holds.
        return builder.AddProject<Projects.Scheduler>(name, o => o.ExcludeLaunchProfile = true)
            .WithHttpEndpoint(targetPort: publishing ? ContainerGrpcPort : null, name: "grpc", env: "Scheduler__GrpcPort")
            .WithEndpoint("grpc", e => e.Transport = "http2")
            .WithHttpEndpoint(targetPort: publishing ? ContainerHttpPort : null, name: "http", env: "Scheduler__HttpPort")
            // Locally DCP's proxy reaches the scheduler on loopback; in a container it must listen on every interface.
            .WithEnvironment("Scheduler__BindAddress", publishing ? "*" : "localhost")
            .WithEnvironment("DTS_TASK_HUB_NAMES", taskHubNames)
            // The store parameter is "redis" (the Redis resource, ConnectionStrings__store); "sqlite" or "memory" also work.
            .WithEnvironment("Scheduler__Store", store)
            .WithHttpHealthCheck("/healthz", endpointName: "http")
            .WithUrlForEndpoint("grpc", u => u.DisplayText = "gRPC (HTTP/2)")
            .WithUrlForEndpoint("http", u => u.DisplayText = "health");
    }

    /// <summary>
    /// Makes sure a project has an <c>http</c> endpoint (the one <c>ASPNETCORE_URLS</c> and the health check use),
    /// whether or not its launch profile or Kestrel settings already declare one.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithDefaultHttpEndpoint(this IResourceBuilder<ProjectResource> builder) =>
        builder.WithEndpoint("http", e =>
        {
            e.UriScheme = "http";
            e.Transport = "http";
        }, createIfNotExists: true);
}
