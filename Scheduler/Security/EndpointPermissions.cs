using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing.Patterns;

namespace DurableTask.Scheduler.Security;

/// <summary>
/// The permission an HTTP endpoint requires, and where its task hub comes from: the route value
/// <see cref="HubRouteParameter"/>; with no hub parameter the caller needs the permission on at least one hub
/// (the endpoint then filters what it shows with <see cref="AccessControl"/>).
/// </summary>
public sealed class PermissionRequirement(Permission permission, string? hubRouteParameter) : IAuthorizationRequirement
{
    public Permission Permission { get; } = permission;
    public string? HubRouteParameter { get; } = hubRouteParameter;

    public override string ToString() => HubRouteParameter is null ? $"{Permission} on any task hub" : $"{Permission} on task hub {{{HubRouteParameter}}}";
}

public static class EndpointPermissionExtensions
{
    /// <summary>
    /// Requires <paramref name="permission"/> on the task hub named by the route value <paramref name="hubRouteParameter"/>
    /// (e.g. <c>"hub"</c> for <c>/api/v1/taskhubs/{hub}/...</c>). Unauthenticated callers get 401, callers without the
    /// permission 403. On a route group it applies to every endpoint inside; an endpoint inside may add a stronger one
    /// (all must pass). Non-GET endpoints with a permission are written to the audit log.
    /// </summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, Permission permission, string? hubRouteParameter = null)
        where TBuilder : IEndpointConventionBuilder
    {
        var requirement = new PermissionRequirement(permission, hubRouteParameter);
        builder.WithMetadata(requirement);
        return builder.RequireAuthorization(new AuthorizationPolicyBuilder().AddRequirements(requirement).Build());
    }

    /// <summary>The permission requirements of an endpoint, outermost (route group) first.</summary>
    public static IReadOnlyList<PermissionRequirement> PermissionsOf(Endpoint endpoint) => endpoint.Metadata.GetOrderedMetadata<PermissionRequirement>();
}

/// <summary>Grants a <see cref="PermissionRequirement"/> when the caller holds the permission on the route's task hub.</summary>
public sealed class PermissionAuthorizationHandler(AccessControl access) : AuthorizationHandler<PermissionRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        var http = context.Resource as HttpContext;
        string? hub = requirement.HubRouteParameter is { } name ? http?.GetRouteValue(name)?.ToString() : null;
        bool allowed = requirement.HubRouteParameter is null
            ? access.IsAllowedSomewhere(context.User, requirement.Permission)
            : hub is not null && access.IsAllowed(context.User, requirement.Permission, hub);
        if (allowed) context.Succeed(requirement);
        return Task.CompletedTask;
    }
}

/// <summary>
/// HTTP side of the security: refuses API endpoints that declare no permission (fail closed when authentication is on),
/// and writes changing API calls (non-GET endpoints with a permission) to the audit log with principal, hub, target and status.
/// </summary>
public sealed class HttpSecurityMiddleware(RequestDelegate next, AccessControl access, ILoggerFactory loggers, SchedulerSecurity security,
    Configuration.SchedulerOptions options)
{
    public const string ApiPrefix = "/api";

    /// <summary>
    /// Where the routes of the JSON API (version 1) start: the API maps them there, and the replica forwarder finds
    /// the task hub in them.
    /// </summary>
    public const string ApiV1Prefix = ApiPrefix + "/v1";
    readonly ILogger _audit = loggers.CreateLogger(AuditLog.Category);
    readonly long _httpBodyLimit = security.HttpBodyLimit(options);
    readonly long _grpcBodyLimit = security.GrpcBodyLimit(options);

    public async Task InvokeAsync(HttpContext context)
    {
        // gRPC messages are bounded by the gRPC limit (answered ResourceExhausted), other bodies by the HTTP limit (413).
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
            bodySize.MaxRequestBodySize = IsGrpc(context.Request) ? _grpcBodyLimit : _httpBodyLimit;

        var endpoint = context.GetEndpoint();
        if (endpoint is null)
        {
            await next(context);
            return;
        }

        var permissions = EndpointPermissionExtensions.PermissionsOf(endpoint);
        if (permissions.Count == 0)
        {
            if (access.AuthenticationEnabled && IsApi(endpoint) && endpoint.Metadata.GetMetadata<IAllowAnonymous>() is null)
            {
                AuditLog.NoPolicy(_audit, DisplayName(endpoint));
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsJsonAsync(new { error = "This endpoint has no access policy." });
                return;
            }

            await next(context);
            return;
        }

        if (HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method) || HttpMethods.IsOptions(context.Request.Method))
        {
            await next(context);
            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            if (_audit.IsEnabled(LogLevel.Information))
            {
                var strongest = permissions[^1];
                string hub = strongest.HubRouteParameter is { } p ? context.GetRouteValue(p)?.ToString() ?? "-" : "-";
                var target = string.Join(", ", context.Request.RouteValues
                    .Where(v => v.Key != strongest.HubRouteParameter && v.Value is not null)
                    .Select(v => $"{v.Key}='{AccessControl.Sanitize(v.Value!.ToString())}'"));
                string peer = $"{context.Connection.RemoteIpAddress}:{context.Connection.RemotePort}";
                AuditLog.Operation(_audit, AccessControl.Describe(context.User), peer, $"{context.Request.Method} {DisplayName(endpoint)}",
                    AccessControl.Sanitize(hub, 80), target.Length == 0 ? "-" : target, $"HTTP {context.Response.StatusCode}");
            }
        }
    }

    internal static bool IsGrpc(HttpRequest request) =>
        request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    static bool IsApi(Endpoint endpoint) =>
        endpoint is RouteEndpoint route && route.RoutePattern.RawText is { } raw
        && (raw.StartsWith(ApiPrefix + "/", StringComparison.OrdinalIgnoreCase) || raw.Equals(ApiPrefix, StringComparison.OrdinalIgnoreCase)
            || raw.StartsWith(ApiPrefix[1..] + "/", StringComparison.OrdinalIgnoreCase));

    static string DisplayName(Endpoint endpoint) => endpoint is RouteEndpoint route ? route.RoutePattern.RawText ?? "?" : endpoint.DisplayName ?? "?";
}
