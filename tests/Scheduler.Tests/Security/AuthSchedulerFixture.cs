using DurableTask.Scheduler.Security;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace DurableTask.Scheduler.Tests.Security;

[CollectionDefinition(Name)]
public sealed class AuthCollection : ICollectionFixture<AuthSchedulerFixture>
{
    public const string Name = "scheduler with authentication";
}

/// <summary>
/// A scheduler with JWT and API-key authentication, static task hubs <c>a</c> and <c>b</c>, one role assignment in
/// configuration (<c>config-user</c> is a worker on <c>b</c>), and sample API endpoints protected with <c>RequirePermission</c>.
/// </summary>
public sealed class AuthSchedulerFixture : IAsyncLifetime
{
    SecureSchedulerHost? _host;
    GrpcChannel? _channel;

    public SecureSchedulerHost Host => _host ?? throw new InvalidOperationException("not started");
    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("not started");

    public static IEnumerable<string> Settings =>
    [
        "--DTS_TASK_HUB_NAMES=a,b",
        "--DTS_USE_DYNAMIC_TASK_HUBS=false",
        "--Scheduler:Authentication:Mode=Jwt,ApiKey",
        .. TestTokens.JwtSettings,
        .. TestApiKeys.Settings,
        "--Scheduler:Authorization:RoleAssignments:0:Principal=config-user",
        "--Scheduler:Authorization:RoleAssignments:0:Role=worker",
        "--Scheduler:Authorization:RoleAssignments:0:Scope=b",
    ];

    /// <summary>Endpoints shaped like the JSON API, protected the way the API is meant to be.</summary>
    public static void MapSampleApi(WebApplication app)
    {
        var api = app.MapGroup("/api/sample");
        api.MapGet("/taskhubs", (HttpContext http, AccessControl access) =>
                new[] { "a", "b" }.Where(h => access.IsAllowed(http.User, Permission.Read, h)).ToArray())
            .RequirePermission(Permission.Read);
        var hub = api.MapGroup("/taskhubs/{hub}").RequirePermission(Permission.Read, hubRouteParameter: "hub");
        hub.MapGet("/orchestrations", (string hub) => Results.Ok(new { hub }));
        hub.MapPost("/orchestrations/{id}/terminate", (string hub, string id) => Results.Accepted())
            .RequirePermission(Permission.ClientWrite, hubRouteParameter: "hub");
        hub.MapDelete("/orchestrations/{id}", (string hub, string id) => Results.NoContent())
            .RequirePermission(Permission.Admin, hubRouteParameter: "hub");
        hub.MapGet("/workitems", () => Results.Ok()).RequirePermission(Permission.WorkerProcess, hubRouteParameter: "hub");
        api.MapGet("/forgotten", () => Results.Ok("open"));
    }

    public async Task InitializeAsync()
    {
        _host = await SecureSchedulerHost.StartAsync(Settings, map: MapSampleApi);
        _channel = GrpcChannel.ForAddress(_host.GrpcAddress, new GrpcChannelOptions { MaxReceiveMessageSize = null });
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        if (_host is not null) await _host.DisposeAsync();
    }
}
