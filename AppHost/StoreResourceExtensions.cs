using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Aspire.Hosting;

/// <summary>
/// The Redis store: Aspire's Redis container (persistence and a data volume) when publishing or when a container runtime
/// answers; otherwise, for a machine without one, Debian's <c>redis-server</c> run as an executable with the same
/// connection string shape (<c>host:port,password=...</c>), so that dependents cannot tell the difference.
/// </summary>
public static class StoreResourceExtensions
{
    /// <summary>Configuration key choosing how the store runs locally: <c>auto</c> (default), <c>container</c> or <c>executable</c>.</summary>
    public const string RuntimeParameter = "Parameters:store-runtime";

    /// <summary>Configuration key of the folder where the <c>redis-server</c> executable keeps its snapshot (default <c>data/store</c> under the AppHost).</summary>
    public const string DataPathParameter = "Parameters:store-data-path";

    public static IResourceBuilder<IResourceWithConnectionString> AddStore(this IDistributedApplicationBuilder builder, string name)
    {
        if (ChooseRuntime(builder) == StoreRuntime.Container)
        {
            return builder.AddRedis(name)
                .WithDataVolume()
                .WithPersistence(TimeSpan.FromSeconds(60), keysChangedThreshold: 1);
        }

        var dataPath = builder.Configuration[DataPathParameter] is { Length: > 0 } configured
            ? Path.GetFullPath(configured, builder.AppHostDirectory)
            : Path.Combine(builder.AppHostDirectory, "data", name);
        return builder.AddRedisServer(name, dataPath);
    }

    /// <summary>
    /// Adds Debian's <c>redis-server</c> as an executable on a port DCP allocates, password-protected with a generated
    /// password, snapshotting to <paramref name="dataPath"/> on the same schedule as the container's persistence.
    /// </summary>
    public static IResourceBuilder<RedisServerResource> AddRedisServer(this IDistributedApplicationBuilder builder, string name, string dataPath)
    {
        var command = ProgramPath.Find("redis-server") ?? throw new DistributedApplicationException(
            $"No container runtime answers and 'redis-server' is not installed, so the '{name}' store cannot start. " +
            $"Install it (apt-get install redis-server), start a container runtime, or set {RuntimeParameter}=container.");
        Directory.CreateDirectory(dataPath);

        var password = ParameterResourceBuilderExtensions.CreateDefaultPasswordParameter(builder, $"{name}-password", special: false);
        var resource = new RedisServerResource(name, command, dataPath, password);

        string? connectionString = null;
        builder.Eventing.Subscribe<ConnectionStringAvailableEvent>(resource, async (_, ct) =>
            connectionString = await resource.ConnectionStringExpression.GetValueAsync(ct));
        var healthCheck = $"{name}_check";
        builder.Services.AddHealthChecks().AddRedis(
            _ => connectionString ?? throw new InvalidOperationException($"The connection string of '{name}' is not available yet."),
            name: healthCheck);

        return builder.AddResource(resource)
            .WithEndpoint(name: RedisServerResource.PrimaryEndpointName, scheme: "tcp")
            .WithArgs(context =>
            {
                context.Args.Add("--port");
                context.Args.Add(resource.PrimaryEndpoint.Property(EndpointProperty.TargetPort));
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                context.Args.Add("--requirepass");
                context.Args.Add(password);
                context.Args.Add("--dir");
                context.Args.Add(dataPath);
                context.Args.Add("--dbfilename");
                context.Args.Add($"{name}.rdb");
                context.Args.Add("--save");
                context.Args.Add("60 1");
                context.Args.Add("--daemonize");
                context.Args.Add("no");
            })
            .WithHealthCheck(healthCheck)
            .WithIconName("Database");
    }

    static StoreRuntime ChooseRuntime(IDistributedApplicationBuilder builder)
    {
        // azd deploys containers, never executables: publishing always uses the container.
        if (builder.ExecutionContext.IsPublishMode)
        {
            return StoreRuntime.Container;
        }

        return builder.Configuration[RuntimeParameter]?.Trim().ToLowerInvariant() switch
        {
            null or "" or "auto" => ContainerRuntimeAnswers(builder.Configuration) ? StoreRuntime.Container : StoreRuntime.Executable,
            "container" => StoreRuntime.Container,
            "executable" => StoreRuntime.Executable,
            var other => throw new DistributedApplicationException(
                $"{RuntimeParameter} is '{other}'; use 'auto', 'container' or 'executable'."),
        };
    }

    /// <summary>Asks the container runtime DCP would use (docker unless ASPIRE_CONTAINER_RUNTIME says otherwise) whether its engine is up.</summary>
    static bool ContainerRuntimeAnswers(IConfiguration configuration)
    {
        var runtime = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"] ?? "docker";
        var startInfo = new ProcessStartInfo(runtime, "info")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        try
        {
            using var process = Process.Start(startInfo);
            if (process is null)
            {
                return false;
            }

            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }

            return process.ExitCode == 0;
        }
        catch (Win32Exception)
        {
            return false; // no such program
        }
    }

    enum StoreRuntime { Container, Executable }
}

/// <summary>Debian's <c>redis-server</c> run by DCP, exposing the connection string of Aspire's Redis container.</summary>
public sealed class RedisServerResource(string name, string command, string workingDirectory, ParameterResource password)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string PrimaryEndpointName = "tcp";

    EndpointReference? _primaryEndpoint;

    public EndpointReference PrimaryEndpoint => _primaryEndpoint ??= new(this, PrimaryEndpointName);

    public ParameterResource PasswordParameter { get; } = password;

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)},password={PasswordParameter}");
}
