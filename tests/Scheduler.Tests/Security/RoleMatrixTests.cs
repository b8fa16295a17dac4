using System.Net;
using System.Net.Http.Headers;
using DurableTask.Scheduler.Security;
using Grpc.Core;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// Each role, from JWT role claims, API keys and configuration, against every gRPC method on every task hub: allowed calls
/// reach the service (whatever it then answers), the others get PermissionDenied; callers without valid credentials get
/// Unauthenticated. Hubs that do not exist look exactly like hubs the caller may not use.
/// </summary>
[Collection(AuthCollection.Name)]
public sealed class RoleMatrixTests(AuthSchedulerFixture fixture, ITestOutputHelper output)
{
    const Permission R = Permission.Read, W = Permission.ClientWrite, P = Permission.WorkerProcess, A = Permission.Admin;
    static readonly Permission[] All = [R, W, P, A];
    static readonly Permission[] WorkerSet = [R, W, P];
    static readonly string[] Hubs = ["a", "b", "nosuch"];

    /// <summary>A caller and what it may do on each hub (hubs not named: nothing).</summary>
    public sealed record Principal(Credential Credential, Dictionary<string, Permission[]> Grants);

    static Dictionary<string, Permission[]> Everywhere(Permission[] permissions) => Hubs.ToDictionary(h => h, _ => permissions);

    static readonly Principal[] Principals =
    [
        new(Credential.Bearer("jwt contributor", TestTokens.Token("u-contributor", ["contributor"])), Everywhere(All)),
        new(Credential.Bearer("jwt (RS256) 'Durable Task Worker'", TestTokens.Token("u-worker", ["Durable Task Worker"], rsa: true)), Everywhere(WorkerSet)),
        new(Credential.Bearer("jwt 'Durable Task Data Reader'", TestTokens.Token("u-reader", ["Durable Task Data Reader"])), Everywhere([R])),
        new(Credential.Bearer("jwt worker:a", TestTokens.Token("u-worker-a", ["worker:a"])), new() { ["a"] = WorkerSet }),
        new(Credential.Bearer("jwt worker:a + reader:b + foreign role", TestTokens.Token("u-mixed", ["reader:b", "worker:a", "Orders.Approve"])),
            new() { ["a"] = WorkerSet, ["b"] = [R] }),
        new(Credential.Bearer("jwt without roles", TestTokens.Token("u-nobody")), new()),
        new(Credential.Bearer("jwt config-user (worker on b from configuration)", TestTokens.Token("config-user")), new() { ["b"] = WorkerSet }),
        new(Credential.ApiKey("api key ops (contributor, x-api-key)", TestApiKeys.ContributorKey), Everywhere(All)),
        new(Credential.Bearer("api key auditor (reader:a, PBKDF2, as bearer)", TestApiKeys.ReaderOfAKey), new() { ["a"] = [R] }),
        new(Credential.ApiKey("api key b-worker ('Durable Task Worker:b')", TestApiKeys.WorkerOfBKey), new() { ["b"] = WorkerSet }),
    ];

    [Fact]
    public async Task Every_role_gets_exactly_its_permissions_on_every_method_and_hub()
    {
        var cases = (from p in Principals from hub in Hubs from method in RawMethods.Names select (p, hub, method)).ToList();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var invoker = fixture.Channel.CreateCallInvoker();
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (c, _) =>
        {
            var permission = MethodPermissions.ByMethod[c.method];
            bool allowed = c.p.Grants.TryGetValue(c.hub, out var granted) && granted.Contains(permission);
            var status = await RawMethods.CallAsync(invoker, c.method, [], c.p.Credential.For(c.hub), TimeSpan.FromSeconds(20));
            bool ok = allowed
                ? status.StatusCode is not (StatusCode.PermissionDenied or StatusCode.Unauthenticated or StatusCode.DeadlineExceeded)
                : status.StatusCode == StatusCode.PermissionDenied && !status.Detail.Contains("not found", StringComparison.OrdinalIgnoreCase);
            if (!ok) failures.Add($"{c.p.Credential} {c.method} on '{c.hub}' (needs {permission}, expected {(allowed ? "allowed" : "PermissionDenied")}): {status.StatusCode} {status.Detail}");
        });

        output.WriteLine($"{cases.Count} calls checked.");
        Assert.True(failures.IsEmpty, string.Join("\n", failures.OrderBy(f => f)));
    }

    [Fact]
    public async Task Named_cases_of_the_matrix()
    {
        var invoker = fixture.Channel.CreateCallInvoker();
        async Task<StatusCode> Call(Principal p, string method, string hub) =>
            (await RawMethods.CallAsync(invoker, method, [], p.Credential.For(hub), TimeSpan.FromSeconds(20))).StatusCode;

        var worker = Principals[1];
        var reader = Principals[2];
        var workerOfA = Principals[3];
        // Workers process work and use the client, but do not purge.
        Assert.Equal(StatusCode.OK, await Call(worker, "GetWorkItems", "a"));
        Assert.Equal(StatusCode.InvalidArgument, await Call(worker, "StartInstance", "a"));
        Assert.Equal(StatusCode.PermissionDenied, await Call(worker, "PurgeInstances", "a"));
        // Readers read only.
        Assert.Equal(StatusCode.InvalidArgument, await Call(reader, "GetInstance", "b"));
        Assert.Equal(StatusCode.PermissionDenied, await Call(reader, "GetWorkItems", "b"));
        Assert.Equal(StatusCode.PermissionDenied, await Call(reader, "RaiseEvent", "b"));
        // Scoped roles stop at their hub, before the hub is looked up.
        Assert.Equal(StatusCode.PermissionDenied, await Call(workerOfA, "GetWorkItems", "b"));
        Assert.Equal(StatusCode.PermissionDenied, await Call(workerOfA, "GetInstance", "nosuch"));
        Assert.Equal(StatusCode.NotFound, await Call(Principals[0], "Hello", "nosuch"));
        // No taskhub header means the hub 'default', which worker:a may not use.
        Assert.Equal(StatusCode.PermissionDenied, (await RawMethods.CallAsync(invoker, "Hello", [], workerOfA.Credential.For(null), TimeSpan.FromSeconds(20))).StatusCode);
    }

    public static IEnumerable<object[]> RejectedCredentials() =>
    [
        [Credential.None],
        [Credential.Bearer("expired token", TestTokens.Token("u", ["contributor"], expires: DateTime.UtcNow.AddMinutes(-10)))],
        [Credential.Bearer("wrong audience", TestTokens.Token("u", ["contributor"], audience: "api://someone-else"))],
        [Credential.Bearer("wrong issuer", TestTokens.Token("u", ["contributor"], issuer: "https://evil.test/"))],
        [Credential.Bearer("signed with an untrusted key", TestTokens.Token("u", ["contributor"], untrustedKey: true))],
        [Credential.Bearer("unsigned (alg none)", TestTokens.Unsigned("u", ["contributor"]))],
        [Credential.Bearer("malformed token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln")],
        [Credential.Bearer("unknown key as bearer", "not-a-configured-key")],
        [Credential.ApiKey("unknown x-api-key", "ck-000000")],
        [new Credential("basic auth", new Metadata { { "authorization", "Basic dXNlcjpwYXNz" } })],
    ];

    [Theory]
    [MemberData(nameof(RejectedCredentials))]
    public async Task Calls_without_valid_credentials_are_unauthenticated_on_every_method(Credential credential)
    {
        var invoker = fixture.Channel.CreateCallInvoker();
        var failures = new List<string>();
        foreach (var method in RawMethods.Names)
        {
            foreach (var hub in new[] { "a", "nosuch" })
            {
                var status = await RawMethods.CallAsync(invoker, method, [], credential.For(hub), TimeSpan.FromSeconds(20));
                if (status.StatusCode != StatusCode.Unauthenticated) failures.Add($"{method} on '{hub}': {status.StatusCode} {status.Detail}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task Http_endpoints_require_their_declared_permission()
    {
        using var http = fixture.Host.CreateHttpClient();
        async Task<HttpStatusCode> Send(HttpMethod method, string path, Credential? credential)
        {
            using var request = new HttpRequestMessage(method, path);
            foreach (var header in credential?.Headers ?? [])
            {
                if (header.Key == "authorization") request.Headers.Authorization = AuthenticationHeaderValue.Parse(header.Value);
                else request.Headers.Add(header.Key, header.Value);
            }

            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        var contributor = Principals[0].Credential;
        var workerOfA = Principals[3].Credential;
        var auditor = Principals[8].Credential;
        var nobody = Principals[5].Credential;

        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/healthz", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "/api/sample/taskhubs/a/orchestrations", null));
        Assert.Equal(HttpStatusCode.Unauthorized, await Send(HttpMethod.Get, "/api/sample/taskhubs/a/orchestrations", Credential.Bearer("x", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/api/sample/taskhubs/a/orchestrations", auditor));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Get, "/api/sample/taskhubs/b/orchestrations", auditor));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Get, "/api/sample/taskhubs/nosuch/orchestrations", auditor));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, "/api/sample/taskhubs/a/orchestrations/i1/terminate", auditor));
        Assert.Equal(HttpStatusCode.Accepted, await Send(HttpMethod.Post, "/api/sample/taskhubs/a/orchestrations/i1/terminate", workerOfA));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Post, "/api/sample/taskhubs/b/orchestrations/i1/terminate", workerOfA));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Delete, "/api/sample/taskhubs/a/orchestrations/i1", workerOfA));
        Assert.Equal(HttpStatusCode.NoContent, await Send(HttpMethod.Delete, "/api/sample/taskhubs/a/orchestrations/i1", contributor));
        Assert.Equal(HttpStatusCode.OK, await Send(HttpMethod.Get, "/api/sample/taskhubs/a/workitems", workerOfA));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Get, "/api/sample/taskhubs/a/workitems", auditor));
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Get, "/api/sample/taskhubs", nobody));
        // An API endpoint that declares no permission is closed.
        Assert.Equal(HttpStatusCode.Forbidden, await Send(HttpMethod.Get, "/api/sample/forgotten", contributor));

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/sample/taskhubs");
        request.Headers.Authorization = AuthenticationHeaderValue.Parse(auditor.Headers.Single().Value);
        using var response = await http.SendAsync(request);
        Assert.Equal("[\"a\"]", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Unauthorized_http_answers_carry_a_bearer_challenge()
    {
        using var http = fixture.Host.CreateHttpClient();
        using var response = await http.GetAsync("/api/sample/taskhubs/a/orchestrations");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
    }
}
