using System.Buffers;
using System.Net;
using System.Net.Security;
using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace DurableTask.Scheduler.ScaleOut;

/// <summary>
/// Sends calls for a task hub that another replica owns to that replica, byte for byte: gRPC calls (including the
/// work-item streams) over HTTP/2 and JSON API calls over HTTP/1.1. The owner authenticates and authorizes them as if
/// they came to it directly. When the owner cannot be reached, the call waits for the hub's next owner (at most the
/// takeover bound) and is sent again if it cannot have had an effect: it never reached the owner, or it only reads.
/// </summary>
public sealed class ReplicaForwarder
{
    /// <summary>Marks a forwarded call, so a replica that does not own the hub either does not forward it again.</summary>
    public const string ForwardedHeader = "x-dts-forwarded-by";

    // Read-only methods: sending one twice has no effect.
    static readonly HashSet<string> ReadOnlyMethods = new(StringComparer.Ordinal)
    {
        "Hello", "GetInstance", "WaitForInstanceStart", "WaitForInstanceCompletion", "QueryInstances", "ListInstanceIds",
        "StreamInstanceHistory", "GetEntity", "QueryEntities", "GetWorkItems",
    };

    static readonly HashSet<string> SkippedRequestHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length", ForwardedHeader,
    };

    static readonly HashSet<string> SkippedResponseHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Server", "Date",
    };

    readonly HubOwnership _ownership;
    readonly TaskHubRegistry _hubs;
    readonly HttpMessageInvoker _client;
    readonly TimeSpan _takeover;

    public ReplicaForwarder(HubOwnership ownership, TaskHubRegistry hubs, Configuration.SchedulerOptions options, SchedulerTls tls)
    {
        _ownership = ownership;
        _hubs = hubs;
        _takeover = options.ScaleOut.TakeoverBound + TimeSpan.FromSeconds(3);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(2),
            KeepAlivePingDelay = TimeSpan.FromSeconds(15),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
        };
        if (tls.Certificate is { } certificate)
        {
            // Replicas share one certificate: the owner is trusted when it presents the same one.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, errors) =>
                errors == SslPolicyErrors.None || (presented is not null && presented.GetCertHashString() == certificate.GetCertHashString());
        }

        _client = new HttpMessageInvoker(handler);
    }

    /// <summary>
    /// For lists across task hubs (<c>/api/v1/taskhubs</c>, <c>/api/v1/scale</c>): asks each replica that owns hubs
    /// this one does not for <paramref name="path"/> (answered for its own hubs only), with the caller's credentials,
    /// and returns the answers, read with the API's JSON settings (<paramref name="json"/>). A replica that does not
    /// answer within 3 s is left out. Empty without replicas, and for a call that is itself such a request.
    /// </summary>
    public async Task<List<T>> GatherAsync<T>(HttpContext context, string path, System.Text.Json.JsonSerializerOptions json)
    {
        if (!_ownership.Enabled || context.Request.Headers.ContainsKey(ForwardedHeader)) return [];
        var owners = _ownership.RemoteHubs.Select(h => h.HttpUrl).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var answers = await Task.WhenAll(owners.Select(async url =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url + path) { Version = HttpVersion.Version11 };
            foreach (string header in new[] { "Authorization", Security.SchedulerSecurity.ApiKeyHeader })
            {
                if (context.Request.Headers.TryGetValue(header, out var value)) request.Headers.TryAddWithoutValidation(header, (IEnumerable<string?>)value);
            }

            request.Headers.TryAddWithoutValidation(ForwardedHeader, _ownership.ReplicaId);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            try
            {
                using var response = await _client.SendAsync(request, timeout.Token);
                if (!response.IsSuccessStatusCode) return default;
                return await System.Text.Json.JsonSerializer.DeserializeAsync<T>(
                    await response.Content.ReadAsStreamAsync(timeout.Token), json, timeout.Token);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException)
            {
                return default;
            }
        }));
        return answers.Where(a => a is not null).Select(a => a!).ToList();
    }

    /// <summary>Forwards calls for hubs owned elsewhere; everything else goes on to this replica's handlers.</summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        try
        {
            await RouteAsync(context, next);
        }
        catch (Storage.StoreUnavailableException) when (!context.Response.HasStarted)
        {
            await RefuseAsync(context, IsGrpc(context.Request), "the store that records which scheduler replica owns each task hub cannot be reached; retry");
        }
    }

    async Task RouteAsync(HttpContext context, RequestDelegate next)
    {
        bool grpc = IsGrpc(context.Request);
        string? hub = grpc ? GrpcHub(context) : ApiHub(context.Request.Path);
        if (hub is null || !_hubs.Serves(hub)) { await next(context); return; }

        var route = _ownership.Route(hub);
        if (route.Kind == HubRouteKind.Local) { await ServeHereAsync(context, next, hub); return; }
        if (route.Kind == HubRouteKind.Unknown && _ownership.AtDynamicHubLimit(hub))
        {
            await RefuseAsync(context, grpc, $"task hub '{hub}' cannot be created: the scheduler already serves the most task hubs allowed (Scheduler:MaxDynamicTaskHubs)",
                grpcStatus: 8, httpStatus: StatusCodes.Status429TooManyRequests);
            return;
        }

        bool forwarded = context.Request.Headers.ContainsKey(ForwardedHeader);
        if (route.Kind == HubRouteKind.Unknown || forwarded)
        {
            // A first call for the hub, or the sender believes this replica owns it: settle who does.
            route = forwarded
                ? await _ownership.WaitForNewRouteAsync(hub, route, TimeSpan.FromSeconds(2), context.RequestAborted)
                : await _ownership.ClaimAsync(hub, context.RequestAborted);
            // No owner for now (the hub is being handed over, or its owner's lease is running out): wait for the next.
            if (!forwarded && route.Kind == HubRouteKind.Unknown)
                route = await _ownership.WaitForNewRouteAsync(hub, route, _takeover, context.RequestAborted);
            if (route.Kind == HubRouteKind.Local) { await ServeHereAsync(context, next, hub); return; }
            if (forwarded || route.Kind == HubRouteKind.Unknown)
            {
                await RefuseAsync(context, grpc, $"task hub '{hub}' has no reachable owner among the scheduler replicas right now; retry");
                return;
            }
        }

        string method = grpc ? context.Request.Path.Value![(context.Request.Path.Value!.LastIndexOf('/') + 1)..] : context.Request.Method;
        bool readOnly = grpc ? ReadOnlyMethods.Contains(method) : HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        byte[] body = await ReadBodyAsync(context.Request);

        var deadline = DateTime.UtcNow + _takeover;
        while (true)
        {
            var outcome = await ForwardAsync(context, route, grpc, body, readOnly);
            if (outcome == Outcome.Done) return;
            if (DateTime.UtcNow > deadline || context.RequestAborted.IsCancellationRequested)
            {
                await RefuseAsync(context, grpc, $"the scheduler replica that owns task hub '{hub}' cannot be reached; retry");
                return;
            }

            // The owner is gone or gave the hub up: wait for the next one, then send the call again.
            route = await _ownership.WaitForNewRouteAsync(hub, route, deadline - DateTime.UtcNow, context.RequestAborted);
            if (route.Kind == HubRouteKind.Local) { await ServeHereAsync(context, next, hub); return; }
            if (route.Kind == HubRouteKind.Unknown)
            {
                await RefuseAsync(context, grpc, $"task hub '{hub}' has no reachable owner among the scheduler replicas right now; retry");
                return;
            }
        }
    }

    /// <summary>Serves a call for a hub this replica owns, once the hub is loaded (its lease may just have been taken).</summary>
    async Task ServeHereAsync(HttpContext context, RequestDelegate next, string hub)
    {
        await _hubs.WhenOpenAsync(hub);
        await next(context);
    }

    enum Outcome
    {
        Done,
        Retry,
    }

    async Task<Outcome> ForwardAsync(HttpContext context, HubRoute route, bool grpc, byte[] body, bool readOnly)
    {
        string? baseUrl = grpc ? route.GrpcUrl : route.HttpUrl;
        if (baseUrl is null) return Outcome.Retry;
        var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), baseUrl + context.Request.Path + context.Request.QueryString)
        {
            Version = grpc ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        foreach (var (name, values) in context.Request.Headers)
        {
            if (name.StartsWith(':') || SkippedRequestHeaders.Contains(name)) continue;
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values)) request.Content.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }

        request.Headers.TryAddWithoutValidation(ForwardedHeader, _ownership.ReplicaId);

        HttpResponseMessage response;
        try
        {
            response = await _client.SendAsync(request, context.RequestAborted);
        }
        catch (HttpRequestException ex) when (!context.RequestAborted.IsCancellationRequested)
        {
            // Not connected: the owner never saw the call. Connected: it may have acted on it.
            return ex.HttpRequestError == HttpRequestError.ConnectionError || readOnly ? Outcome.Retry : await FailAsync(context, grpc);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return Outcome.Done;
        }

        using (response)
        {
            // The owner gave the hub up (its answer says so before anything was done): send it to the next owner.
            if (grpc && readOnly && Header(response, "grpc-status") == "14" && Header(response, "grpc-message") is { } message
                && Uri.UnescapeDataString(message).Contains("moved to another scheduler replica", StringComparison.Ordinal))
                return Outcome.Retry;

            context.Response.StatusCode = (int)response.StatusCode;
            CopyHeaders(response.Headers, context.Response.Headers);
            CopyHeaders(response.Content.Headers, context.Response.Headers);
            var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
            try
            {
                await using var stream = await response.Content.ReadAsStreamAsync(context.RequestAborted);
                await context.Response.StartAsync(context.RequestAborted);
                int read;
                while ((read = await stream.ReadAsync(buffer, context.RequestAborted)) > 0)
                {
                    await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                }
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
            {
                // The owner went away mid-answer (or the caller did): end the call abruptly so the caller sees a failure.
                context.Abort();
                return Outcome.Done;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            if (response.TrailingHeaders.Any())
            {
                var trailers = context.Features.Get<IHttpResponseTrailersFeature>();
                foreach (var (name, values) in response.TrailingHeaders)
                {
                    if (trailers is not null) trailers.Trailers[name] = new StringValues(values.ToArray());
                }
            }

            return Outcome.Done;
        }
    }

    static async Task<Outcome> FailAsync(HttpContext context, bool grpc)
    {
        await RefuseAsync(context, grpc, "the scheduler replica that owns the task hub went away while handling the call; it may or may not have taken effect");
        return Outcome.Done;
    }

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    static void CopyHeaders(System.Net.Http.Headers.HttpHeaders from, IHeaderDictionary to)
    {
        foreach (var (name, values) in from)
        {
            if (SkippedResponseHeaders.Contains(name)) continue;
            to[name] = new StringValues(values.ToArray());
        }
    }

    static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        return buffer.ToArray();
    }

    /// <summary>Answers Unavailable: a gRPC status (trailers only) or a problem-details 503.</summary>
    static async Task RefuseAsync(HttpContext context, bool grpc, string message, int grpcStatus = 14, int httpStatus = StatusCodes.Status503ServiceUnavailable)
    {
        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }

        if (grpc)
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = grpcStatus.ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
            return;
        }

        context.Response.Headers.RetryAfter = "1";
        await Results.Problem(statusCode: httpStatus, title: "Task hub unavailable", detail: message)
            .ExecuteAsync(context);
    }

    static bool IsGrpc(HttpRequest request) => request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;

    static string GrpcHub(HttpContext context) =>
        context.Request.Headers.TryGetValue("taskhub", out var value) && value.Count > 0 && !string.IsNullOrEmpty(value[0])
            ? value[0]!
            : TaskHubRegistry.DefaultHubName;

    /// <summary>The hub of <c>/api/v1/taskhubs/{hub}/...</c>; null for other paths.</summary>
    static string? ApiHub(PathString path)
    {
        const string Prefix = HttpSecurityMiddleware.ApiV1Prefix + "/taskhubs/";
        string? value = path.Value;
        if (value is null || !value.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)) return null;
        int end = value.IndexOf('/', Prefix.Length);
        string hub = end < 0 ? value[Prefix.Length..] : value[Prefix.Length..end];
        return hub.Length == 0 ? null : Uri.UnescapeDataString(hub);
    }
}
