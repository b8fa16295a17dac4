using System.Collections.Frozen;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Http.Features;

namespace DurableTask.Scheduler.Protocol;

/// <summary>
/// Hands a call to a known gRPC method straight to its endpoint, without endpoint routing, the HTTP security
/// middleware or the authorization middleware, and without a dependency-injection scope per call. Installed only
/// when none of those has work to do on gRPC calls: authentication is off (every caller is anonymous and the gRPC
/// handlers still apply method policies and the audit log, see MethodSecurity) and no replica forwarding sits in the pipeline.
/// Every gRPC service in the scheduler is a singleton, so the root provider serves the call. Plain completions do not
/// even reach the endpoint: <see cref="DirectCompletions"/> answers them. Everything else (unknown methods, HTTP API,
/// health) takes the regular pipeline.
/// </summary>
/// <remarks>
/// Measured on 2 cores (hello-cities, 13 calls per orchestration): routing matched each gRPC path against the
/// library's unimplemented-method route as well, capturing the method name as a new string, and the scope and the
/// two middleware each allocated per call.
/// </remarks>
public sealed class GrpcDirectDispatch(RequestDelegate next, IServiceProvider services, long grpcBodyLimit)
{
    FrozenDictionary<string, Route>? _byPath;
    readonly RootServices _services = new(services);

    /// <summary>A gRPC method's endpoint and, for the completions, the handler that serves plain calls directly.</summary>
    sealed record Route(Endpoint Endpoint, Func<HttpContext, RequestDelegate, Task>? Direct);

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!HttpMethods.IsPost(request.Method) || !Security.HttpSecurityMiddleware.IsGrpc(request)
            || !(_byPath ?? Build()).TryGetValue(request.Path.Value ?? "", out var route))
            return next(context);

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
            bodySize.MaxRequestBodySize = grpcBodyLimit;
        // One shared feature instead of the per-request one that setting RequestServices allocates.
        context.Features.Set<IServiceProvidersFeature>(_services);
        var endpoint = route.Endpoint;
        context.SetEndpoint(endpoint);
        if (route.Direct is { } direct && DirectCompletions.IsPlain(request)) return direct(context, endpoint.RequestDelegate!);
        return endpoint.RequestDelegate!(context);
    }

    FrozenDictionary<string, Route> Build()
    {
        var completions = services.GetRequiredService<DirectCompletions>();
        var byPath = new Dictionary<string, Route>(StringComparer.Ordinal);
        foreach (var endpoint in services.GetRequiredService<EndpointDataSource>().Endpoints)
        {
            if (endpoint.RequestDelegate is null || endpoint.Metadata.GetMetadata<GrpcMethodMetadata>() is not { } grpc) continue;
            string path = $"/{grpc.Method.FullName.TrimStart('/')}";
            byPath[path] = new Route(endpoint, completions.For(path));
        }

        return _byPath = byPath.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>The root provider as every direct call's request services: there is no scope to create or dispose.</summary>
    sealed class RootServices(IServiceProvider services) : IServiceProvidersFeature
    {
        public IServiceProvider RequestServices
        {
            get => services;
            set => throw new NotSupportedException("a direct gRPC call's services are the scheduler's root provider");
        }
    }
}
