using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// Bounded fuzzing of every entry point: random and malformed protobuf bodies sent to all gRPC methods (with good, bad and
/// missing credentials and wrong task hub headers), random completions for real work items, hostile HTTP requests to every
/// mapped route, and raw garbage on both sockets. The scheduler must answer each call with a well-formed status, stay healthy,
/// keep its state readable, and still run a normal orchestration afterwards. Set FUZZ_SEED to replay a run, FUZZ_SECONDS to
/// fuzz longer.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    /// <summary>Statuses a hostile call may get. Unknown, Internal, DataLoss, Aborted and Unavailable are findings.</summary>
    static readonly HashSet<StatusCode> WellFormed =
    [
        StatusCode.OK, StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.AlreadyExists, StatusCode.FailedPrecondition,
        StatusCode.PermissionDenied, StatusCode.Unauthenticated, StatusCode.Unimplemented, StatusCode.OutOfRange,
        StatusCode.ResourceExhausted, StatusCode.DeadlineExceeded, StatusCode.Cancelled,
    ];

    static readonly string[] HostileHubs = ["", " ", "nosuch", "f1 ", "F1", "a/../f1", "..", "*", "%00", new('h', 65), new('h', 5000), "default,f1", "\tf1"];

    sealed record Finding(string Where, string Status, string Detail, string Kind, string Input);

    [Fact]
    public async Task The_scheduler_survives_hostile_input_on_every_entry_point()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SEED"), out var s) ? s : Random.Shared.Next();
        var duration = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("FUZZ_SECONDS"), out var secs) ? secs : 20);
        output.WriteLine($"FUZZ_SEED={seed}, {duration.TotalSeconds} s");

        string contributor = TestTokens.Token("fuzzer", ["contributor"]);
        string[] routes = MappedRoutes();
        await using var host = await SchedulerProcess.StartAsync(
        [
            "--DTS_TASK_HUB_NAMES=default,f1",
            "--DTS_USE_DYNAMIC_TASK_HUBS=false",
            "--Scheduler:Authentication:Mode=Jwt,ApiKey",
            .. TestTokens.JwtSettings,
            .. TestApiKeys.Settings,
            "--Scheduler:HealthPingInterval=00:00:01",
        ]);
        // The JSON API is fuzzed on a second scheduler with authentication off, so requests reach the handlers.
        await using var open = await SchedulerProcess.StartAsync(["--DTS_TASK_HUB_NAMES=default,f1", "--DTS_USE_DYNAMIC_TASK_HUBS=false"]);
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress, new GrpcChannelOptions { MaxReceiveMessageSize = null, MaxSendMessageSize = null });
        var asContributor = new HeadersInterceptor(new Metadata { { "authorization", "Bearer " + contributor } });

        // Instances whose ids the fuzzer reuses; one of them keeps waiting for an event on each hub.
        var known = new ConcurrentBag<string>();
        await using (var seeder = await SdkApp.StartAsync(channel, "f1", worker: false, asContributor))
        {
            for (int i = 0; i < 5; i++) known.Add(await seeder.Client.ScheduleNewOrchestrationInstanceAsync(i % 2 == 0 ? "Greet" : "WaitForApproval", "seed"));
        }

        var findings = new ConcurrentQueue<Finding>();
        var statuses = new ConcurrentDictionary<string, int>();
        var stopwatch = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(duration);
        var invoker = channel.CreateCallInvoker();
        var knownList = () => known.ToArray();

        async Task GrpcLoop(int worker)
        {
            var rng = new Random(seed + worker);
            var fuzzer = new ProtoFuzzer(rng, () => { var ids = knownList(); return ids[rng.Next(ids.Length)]; });
            var methods = RawMethods.Descriptors;
            while (!stop.IsCancellationRequested)
            {
                var descriptor = methods[rng.Next(methods.Count)];
                var (kind, body) = fuzzer.Next(descriptor.InputType);
                var headers = new Metadata();
                int auth = rng.Next(20);
                if (auth < 16) headers.Add("authorization", "Bearer " + contributor);
                else if (auth == 16) headers.Add("x-api-key", TestApiKeys.WorkerOfBKey);
                else if (auth == 17) headers.Add("authorization", "Bearer " + Convert.ToBase64String(RandomBytes(rng, rng.Next(1, 3000))));
                else if (auth == 18) headers.Add("authorization", "Bearer eyJ" + Convert.ToBase64String(RandomBytes(rng, 60)) + ".x.y");
                int hub = rng.Next(10);
                if (hub < 6) headers.Add("taskhub", "f1");
                else if (hub < 8) headers.Add("taskhub", "default");
                else if (hub == 8) headers.Add("taskhub", HostileHubs[rng.Next(HostileHubs.Length)]);
                if (rng.Next(10) == 0) headers.Add("workerid", new string('w', rng.Next(0, 2000)));

                var status = await RawMethods.CallAsync(invoker, descriptor.Name, body, headers, TimeSpan.FromSeconds(rng.Next(3) == 0 ? 0.2 : 3));
                statuses.AddOrUpdate($"{descriptor.Name} {status.StatusCode}", 1, (_, n) => n + 1);
                if (!WellFormed.Contains(status.StatusCode))
                    findings.Enqueue(new Finding(descriptor.Name, status.StatusCode.ToString(), status.Detail, kind.ToString(), Convert.ToHexString(body.AsSpan(0, Math.Min(body.Length, 512)))));
            }
        }

        // A hand-driven worker on f1 answering real work items with random completions.
        async Task CompletionLoop()
        {
            var rng = new Random(seed - 1);
            var fuzzer = new ProtoFuzzer(rng, () => { var ids = knownList(); return ids[rng.Next(ids.Length)]; });
            var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel.Intercept(asContributor).Intercept(new TaskHubInterceptor("f1")));
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var call = client.GetWorkItems(new P.GetWorkItemsRequest(), cancellationToken: stop.Token);
                    while (await call.ResponseStream.MoveNext(stop.Token))
                    {
                        var item = call.ResponseStream.Current;
                        await Complete(client, item, rng, fuzzer);
                    }
                }
                catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled || stop.IsCancellationRequested)
                {
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
                catch (RpcException ex)
                {
                    statuses.AddOrUpdate($"GetWorkItems (worker) {ex.StatusCode}", 1, (_, n) => n + 1);
                    if (!WellFormed.Contains(ex.StatusCode)) findings.Enqueue(new Finding("GetWorkItems (worker stream)", ex.StatusCode.ToString(), ex.Status.Detail, "valid", ""));
                    await Task.Delay(200);
                }
            }
        }

        async Task Complete(P.TaskHubSidecarService.TaskHubSidecarServiceClient client, P.WorkItem item, Random rng, ProtoFuzzer fuzzer)
        {
            async Task Record(string what, Func<Task> call, IMessage sent)
            {
                try
                {
                    await call();
                    statuses.AddOrUpdate($"{what} OK", 1, (_, n) => n + 1);
                }
                catch (RpcException ex)
                {
                    statuses.AddOrUpdate($"{what} {ex.StatusCode}", 1, (_, n) => n + 1);
                    if (!WellFormed.Contains(ex.StatusCode))
                        findings.Enqueue(new Finding(what, ex.StatusCode.ToString(), ex.Status.Detail, "random completion", Shorten(sent.ToString(), 1500)));
                }
            }

            var deadline = DateTime.UtcNow.AddSeconds(5);
            if (item.OrchestratorRequest is { } orchestration)
            {
                known.Add(orchestration.InstanceId);
                var response = (P.OrchestratorResponse)fuzzer.Message(P.OrchestratorResponse.Descriptor, 1);
                response.InstanceId = rng.Next(10) == 0 ? response.InstanceId : orchestration.InstanceId;
                response.CompletionToken = rng.Next(10) == 0 ? response.CompletionToken : item.CompletionToken;
                if (rng.Next(5) == 0)
                    await Record("AbandonTaskOrchestratorWorkItem", () => client.AbandonTaskOrchestratorWorkItemAsync(
                        new P.AbandonOrchestrationTaskRequest { CompletionToken = item.CompletionToken }, deadline: deadline).ResponseAsync, response);
                else
                    await Record("CompleteOrchestratorTask (random)", () => client.CompleteOrchestratorTaskAsync(response, deadline: deadline).ResponseAsync, response);
            }
            else if (item.ActivityRequest is { } activity)
            {
                var response = (P.ActivityResponse)fuzzer.Message(P.ActivityResponse.Descriptor, 1);
                response.InstanceId = activity.OrchestrationInstance?.InstanceId ?? "";
                response.TaskId = rng.Next(4) == 0 ? response.TaskId : activity.TaskId;
                response.CompletionToken = item.CompletionToken;
                await Record("CompleteActivityTask (random)", () => client.CompleteActivityTaskAsync(response, deadline: deadline).ResponseAsync, response);
            }
            else if (item.EntityRequest is not null || item.EntityRequestV2 is not null)
            {
                var response = (P.EntityBatchResult)fuzzer.Message(P.EntityBatchResult.Descriptor, 1);
                response.CompletionToken = item.CompletionToken;
                await Record("CompleteEntityTask (random)", () => client.CompleteEntityTaskAsync(response, deadline: deadline).ResponseAsync, response);
            }
        }

        // Structured starts on f1 so the completion loop gets work: names the worker does not know, random inputs.
        async Task StartLoop()
        {
            var rng = new Random(seed - 2);
            var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel.Intercept(asContributor).Intercept(new TaskHubInterceptor("f1")));
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var response = await client.StartInstanceAsync(new P.CreateInstanceRequest { Name = "Fuzz" + rng.Next(3), Input = "\"" + rng.Next() + "\"" },
                        deadline: DateTime.UtcNow.AddSeconds(5));
                    known.Add(response.InstanceId);
                    if (rng.Next(3) == 0)
                        await client.SignalEntityAsync(new P.SignalEntityRequest { InstanceId = $"@counter@k{rng.Next(5)}", Name = "add", Input = "1", RequestId = Guid.NewGuid().ToString() },
                            deadline: DateTime.UtcNow.AddSeconds(5));
                }
                catch (RpcException ex)
                {
                    if (!WellFormed.Contains(ex.StatusCode)) findings.Enqueue(new Finding("StartInstance (plain)", ex.StatusCode.ToString(), ex.Status.Detail, "valid", ""));
                }

                await Task.Delay(20);
            }
        }

        var httpFindings = new ConcurrentQueue<string>();
        async Task HttpLoop()
        {
            var rng = new Random(seed + 100);
            using var secured = new HttpClient { BaseAddress = new Uri(host.HttpAddress), Timeout = TimeSpan.FromSeconds(10) };
            using var anonymous = new HttpClient { BaseAddress = new Uri(open.HttpAddress), Timeout = TimeSpan.FromSeconds(10) };
            while (!stop.IsCancellationRequested)
            {
                var http = rng.Next(4) == 0 ? secured : anonymous;
                string path = rng.Next(5) == 0 ? "/r/" + Uri.EscapeDataString(Convert.ToBase64String(RandomBytes(rng, rng.Next(1, 200))))
                    : FillRoute(routes[rng.Next(routes.Length)], rng);
                var method = new[] { HttpMethod.Get, HttpMethod.Post, HttpMethod.Put, HttpMethod.Delete, HttpMethod.Patch, HttpMethod.Head, HttpMethod.Options }[rng.Next(7)];
                using var request = new HttpRequestMessage(method, path);
                if (rng.Next(4) != 0) request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + contributor);
                if (method != HttpMethod.Get && method != HttpMethod.Head && rng.Next(3) != 0) request.Content = HostileBody(rng);
                try
                {
                    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
                    statuses.AddOrUpdate($"HTTP {(int)response.StatusCode / 100}xx", 1, (_, n) => n + 1);
                    if ((int)response.StatusCode >= 500 && !(path.StartsWith("/health") && response.StatusCode == HttpStatusCode.ServiceUnavailable))
                        httpFindings.Enqueue($"{method} {path[..Math.Min(path.Length, 200)]} -> {(int)response.StatusCode}");
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
                catch (Exception ex) when (ex is UriFormatException or InvalidOperationException)
                {
                    // The client refused to send it.
                }
                catch (HttpRequestException)
                {
                    // Typically the server answered (413, 404) and closed the connection before a large body was sent;
                    // the health and orchestration checks after the run show whether the server is still fine.
                    statuses.AddOrUpdate("HTTP connection closed", 1, (_, n) => n + 1);
                }
            }
        }

        // Garbage straight onto the sockets: TLS-less HTTP/2 preface followed by junk, HTTP/1 junk, random bytes.
        async Task SocketLoop()
        {
            var rng = new Random(seed + 200);
            while (!stop.IsCancellationRequested)
            {
                int port = rng.Next(2) == 0 ? host.GrpcPort : host.HttpPort;
                try
                {
                    using var socket = new TcpClient();
                    await socket.ConnectAsync(IPAddress.Loopback, port, stop.Token);
                    var stream = socket.GetStream();
                    byte[] junk = rng.Next(3) switch
                    {
                        0 => [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), .. RandomBytes(rng, rng.Next(1, 4000))],
                        1 => Encoding.ASCII.GetBytes($"GET /{new string('a', rng.Next(1, 20000))} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
                        _ => RandomBytes(rng, rng.Next(1, 4000)),
                    };
                    await stream.WriteAsync(junk, stop.Token);
                    var buffer = new byte[1024];
                    using var read = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                    read.CancelAfter(200);
                    try
                    {
                        _ = await stream.ReadAtLeastAsync(buffer, 1, throwOnEndOfStream: false, read.Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }
                catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
                {
                }
            }
        }

        // The scheduler must outlive the run; if it dies, stop at once and show why.
        async Task Watchdog()
        {
            while (!stop.IsCancellationRequested && !host.HasExited && !open.HasExited) await Task.Delay(100);
            if (host.HasExited || open.HasExited) await stop.CancelAsync();
        }

        int loops = 3;
        await Task.WhenAll([.. Enumerable.Range(0, loops).Select(i => Task.Run(() => GrpcLoop(i))), Task.Run(CompletionLoop), Task.Run(StartLoop),
            Task.Run(HttpLoop), Task.Run(SocketLoop), Task.Run(Watchdog)]);
        output.WriteLine($"Fuzzed for {stopwatch.Elapsed.TotalSeconds:F1} s; {statuses.Values.Sum()} calls.");
        foreach (var (key, count) in statuses.OrderBy(p => p.Key)) output.WriteLine($"  {key}: {count}");
        await Task.Delay(1500);
        Assert.False(host.HasExited, $"FUZZ_SEED={seed}: the scheduler crashed. {host.Obituary}");
        Assert.False(open.HasExited, $"FUZZ_SEED={seed}: the scheduler serving the fuzzed JSON API crashed. {open.Obituary}");

        // Still healthy, state still readable, and a normal orchestration still runs on both hubs.
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
        {
            Assert.Equal("Healthy", await http.GetStringAsync($"{host.HttpAddress}/healthz"));
            Assert.Equal("Healthy", await http.GetStringAsync($"{open.HttpAddress}/healthz"));
        }
        var reader = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel.Intercept(asContributor).Intercept(new TaskHubInterceptor("f1")));
        string? token = null;
        int pages = 0, instances = 0;
        do
        {
            var page = await reader.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { MaxInstanceCount = 500, ContinuationToken = token, FetchInputsAndOutputs = true } },
                deadline: DateTime.UtcNow.AddSeconds(30));
            instances += page.OrchestrationState.Count;
            token = page.ContinuationToken;
            pages++;
        }
        while (!string.IsNullOrEmpty(token) && pages < 1000);
        output.WriteLine($"f1 holds {instances} instances after the run.");

        foreach (var hubName in new[] { "f1", "default" })
        {
            await using var app = await SdkApp.StartAsync(channel, hubName, worker: true, asContributor);
            string id = await app.Client.ScheduleNewOrchestrationInstanceAsync("Greet", hubName);
            var state = await app.Client.CompletionAsync(id, TimeSpan.FromSeconds(60));
            Assert.True(state.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"After fuzzing, an orchestration on '{hubName}' ended {Waits.Describe(state)}.");
        }

        Assert.False(host.HasExited, $"FUZZ_SEED={seed}: the scheduler crashed. {host.Obituary}");
        // Console log lines of errors start with "fail:" or "crit:"; keep each with the line after it (the message).
        var lines = host.Output.Concat(open.Output).ToList();
        var crashes = lines.Select((line, i) => (line, i)).Where(l => l.line.StartsWith("fail:") || l.line.StartsWith("crit:"))
            .Select(l => l.line + " " + (l.i + 1 < lines.Count ? lines[l.i + 1].Trim() : "")).Distinct().Take(20).ToList();
        foreach (var c in crashes) output.WriteLine("server log: " + c);
        var grouped = findings.GroupBy(f => $"{f.Where} -> {f.Status}: {f.Detail}").Select(g => $"{g.Key} (x{g.Count()}, e.g. {g.First().Kind} input {g.First().Input[..Math.Min(g.First().Input.Length, 300)]})").ToList();
        Assert.True(grouped.Count == 0 && httpFindings.IsEmpty,
            $"FUZZ_SEED={seed}: {findings.Count} calls got a status that is not a well-formed error:\n" + string.Join("\n", grouped.Take(30))
            + "\nHTTP: " + string.Join("\n", httpFindings.Distinct().Take(20)) + "\nServer errors:\n" + string.Join("\n", crashes));
    }

    /// <summary>The HTTP routes the scheduler maps, read from an app that is built but not started.</summary>
    static string[] MappedRoutes()
    {
        var app = DurableTask.Scheduler.Hosting.SchedulerHost.Build(["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0"]);
        try
        {
            return ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
                .Select(e => e.RoutePattern.RawText ?? "/").Where(r => !r.Contains("TaskHubSidecarService")).Distinct().ToArray();
        }
        finally
        {
            ((IDisposable)app).Dispose();
        }
    }

    static string Shorten(string? text, int max) => text is null ? "" : text.Length <= max ? text : text[..max] + "...";

    static byte[] RandomBytes(Random rng, int length)
    {
        var bytes = new byte[length];
        rng.NextBytes(bytes);
        return bytes;
    }

    static string FillRoute(string pattern, Random rng)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < pattern.Length)
        {
            if (pattern[i] == '{')
            {
                int end = pattern.IndexOf('}', i);
                string name = pattern[(i + 1)..end];
                sb.Append(rng.Next(6) switch
                {
                    0 => "f1",
                    1 => "default",
                    2 => Uri.EscapeDataString(new string('x', rng.Next(1, 3000))),
                    3 => "%FF%FE%00",
                    4 => rng.Next(-5, 5).ToString(),
                    _ => Uri.EscapeDataString(name.Contains("int") ? "-1" : "@a@b"),
                });
                i = end + 1;
            }
            else
            {
                sb.Append(pattern[i++]);
            }
        }

        string path = sb.ToString();
        if (!path.StartsWith('/')) path = "/" + path;
        return rng.Next(3) == 0 ? path + "?pageSize=-1&continuationToken=%FF%00bogus&top=99999999999&status=Bogus" : path;
    }

    static HttpContent HostileBody(Random rng)
    {
        byte[] bytes = rng.Next(6) switch
        {
            0 => Encoding.UTF8.GetBytes(new string('[', 100_000) + new string(']', 100_000)),
            1 => Encoding.UTF8.GetBytes("{\"name\":\"" + new string('n', 2_000_000) + "\"}"),
            2 => [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x3A, 0xFF, 0x7D],
            3 => Encoding.UTF8.GetBytes("{\"name\":\"A\",\"input\":" + new string('{', 3000) + "}"),
            4 => RandomBytes(rng, rng.Next(0, 20_000)),
            _ => Encoding.UTF8.GetBytes("{\"pageSize\":-1,\"instanceIds\":[" + string.Join(",", Enumerable.Repeat("\"x\"", 100_000)) + "]}"),
        };
        var content = new ByteArrayContent(bytes);
        content.Headers.TryAddWithoutValidation("Content-Type", rng.Next(4) == 0 ? "text/plain; charset=bogus" : "application/json");
        return content;
    }
}
