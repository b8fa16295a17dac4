using System.Text;
using DurableTask.Scheduler.Tests.Infrastructure;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Security;

public sealed class HostileInputFixture : IAsyncLifetime
{
    public SecureSchedulerHost Host { get; private set; } = null!;
    public GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = await SecureSchedulerHost.StartAsync(["--DTS_TASK_HUB_NAMES=default,h1", "--DTS_USE_DYNAMIC_TASK_HUBS=false"]);
        Channel = GrpcChannel.ForAddress(Host.GrpcAddress, new GrpcChannelOptions { MaxSendMessageSize = null, MaxReceiveMessageSize = null });
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        await Host.DisposeAsync();
    }
}

/// <summary>Named hostile inputs, each answered with a clear, well-formed error (or accepted) without harming the scheduler.</summary>
public sealed class HostileInputTests(HostileInputFixture fixture) : IClassFixture<HostileInputFixture>
{
    P.TaskHubSidecarService.TaskHubSidecarServiceClient Client(string hub = "h1") =>
        new(fixture.Channel.Intercept(new TaskHubInterceptor(hub)));

    static async Task<RpcException> Fails<T>(Func<Task<T>> call, StatusCode expected, string? mentions = null)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(error.StatusCode == expected, $"Expected {expected}, got {error.StatusCode}: {error.Status.Detail}");
        if (mentions is not null) Assert.Contains(mentions, error.Status.Detail, StringComparison.OrdinalIgnoreCase);
        return error;
    }

    async Task<Status> Raw(string method, byte[] body, string hub = "h1") =>
        await RawMethods.CallAsync(fixture.Channel.CreateCallInvoker(), method, body, new Metadata { { "taskhub", hub } }, TimeSpan.FromSeconds(20));

    [Fact]
    public async Task Bytes_that_are_not_a_protobuf_message_are_invalid_arguments()
    {
        byte[][] bodies =
        [
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF],                   // truncated varint
            [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01],       // length far beyond the message
            [0x0B, 0x08, 0x01],                               // group start with no end
        ];
        foreach (var method in new[] { "StartInstance", "CompleteOrchestratorTask", "GetInstance", "PurgeInstances" })
        {
            foreach (var body in bodies)
            {
                var status = await Raw(method, body);
                Assert.True(status.StatusCode == StatusCode.InvalidArgument, $"{method} {Convert.ToHexString(body)}: {status.StatusCode} {status.Detail}");
                Assert.Contains("is not a valid", status.Detail);
            }
        }
    }

    [Fact]
    public async Task Strings_with_invalid_utf8_are_decoded_with_replacement_characters_or_refused()
    {
        // CreateInstanceRequest: instanceId (1) = 'a' + invalid bytes, name (2) = "A".
        byte[] body = [0x0A, 0x04, 0x61, 0xC3, 0x28, 0xFF, 0x12, 0x01, 0x41];
        var status = await Raw("StartInstance", body);
        Assert.True(status.StatusCode is StatusCode.OK or StatusCode.InvalidArgument, $"{status.StatusCode} {status.Detail}");
        if (status.StatusCode == StatusCode.OK)
        {
            var state = await Client().GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "a\uFFFD(\uFFFD" });
            Assert.True(state.Exists, "The instance id was decoded differently than with replacement characters.");
        }
    }

    [Fact]
    public async Task Messages_over_the_size_limit_are_refused_as_resource_exhausted()
    {
        var request = new P.CreateInstanceRequest { InstanceId = "big", Name = "A", Input = new string('x', 17 * 1024 * 1024) };
        var status = await Raw("StartInstance", request.ToByteArray());
        Assert.Equal(StatusCode.ResourceExhausted, status.StatusCode);
    }

    [Fact]
    public async Task Oversized_fields_name_the_field_and_the_limit()
    {
        var client = Client();
        await Fails(() => client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = new string('i', 101), Name = "A" }).ResponseAsync,
            StatusCode.InvalidArgument, "limit is 100");
        await Fails(() => client.StartInstanceAsync(new P.CreateInstanceRequest { Name = "A", Input = new string('p', 1_100_000) }).ResponseAsync,
            StatusCode.InvalidArgument, "MaxPayloadBytes");
        // Above the HTTP body limit (8 MiB) but below the gRPC message limit (16 MiB): the payload check answers, not the transport.
        await Fails(() => client.StartInstanceAsync(new P.CreateInstanceRequest { Name = "A", Input = new string('p', 10 * 1024 * 1024) }).ResponseAsync,
            StatusCode.InvalidArgument, "MaxPayloadBytes");
        await Fails(() => client.StartInstanceAsync(new P.CreateInstanceRequest { Name = new string('n', 5000) }).ResponseAsync,
            StatusCode.InvalidArgument, "limit is 1024");
        await Fails(() => client.RaiseEventAsync(new P.RaiseEventRequest { InstanceId = "x\u0000y", Name = "e" }).ResponseAsync,
            StatusCode.InvalidArgument, "non-printable");
    }

    [Fact]
    public async Task Negative_page_sizes_and_bogus_continuation_tokens_are_clear_errors()
    {
        var client = Client();
        await Fails(() => client.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { MaxInstanceCount = -1 } }).ResponseAsync,
            StatusCode.InvalidArgument, "must not be negative");
        await Fails(() => client.ListInstanceIdsAsync(new P.ListInstanceIdsRequest { PageSize = int.MinValue }).ResponseAsync,
            StatusCode.InvalidArgument, "must not be negative");
        await Fails(() => client.QueryEntitiesAsync(new P.QueryEntitiesRequest { Query = new P.EntityQuery { PageSize = -5 } }).ResponseAsync,
            StatusCode.InvalidArgument, "must not be negative");
        await Fails(() => client.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { ContinuationToken = new string('t', 5000) } }).ResponseAsync,
            StatusCode.InvalidArgument, "continuationToken");

        // Short bogus tokens act as cursors: they page from that key or give an empty page, never an error the caller cannot read.
        foreach (var token in new[] { "bogus", "\u0001", "~~~~", "@@", "ZZZZZZZZ" })
        {
            var page = await client.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { ContinuationToken = token, MaxInstanceCount = 10 } });
            Assert.True(page.OrchestrationState.Count <= 10);
            var ids = await client.ListInstanceIdsAsync(new P.ListInstanceIdsRequest { LastInstanceKey = token, PageSize = 10 });
            Assert.True(ids.InstanceIds.Count <= 10);
        }
    }

    [Fact]
    public async Task Huge_repeated_fields_are_bounded()
    {
        var client = Client();
        var purge = new P.PurgeInstancesRequest { InstanceBatch = new P.InstanceBatch() };
        purge.InstanceBatch.InstanceIds.AddRange(Enumerable.Range(0, 100_000).Select(i => "id" + i));
        await Fails(() => client.PurgeInstancesAsync(purge).ResponseAsync, StatusCode.InvalidArgument, "limit is 500");

        var tags = new P.CreateInstanceRequest { Name = "A" };
        for (int i = 0; i < 10_000; i++) tags.Tags["k" + i] = "v";
        await Fails(() => client.StartInstanceAsync(tags).ResponseAsync, StatusCode.InvalidArgument, "limit is 64");

        var query = new P.QueryInstancesRequest { Query = new P.InstanceQuery { MaxInstanceCount = 5 } };
        query.Query.RuntimeStatus.AddRange(Enumerable.Repeat(P.OrchestrationStatus.Running, 200_000));
        var page = await client.QueryInstancesAsync(query);
        Assert.True(page.OrchestrationState.Count <= 5);
    }

    [Fact]
    public async Task Durations_and_timestamps_out_of_range_are_invalid_arguments()
    {
        var client = Client();
        foreach (var seconds in new[] { long.MaxValue, 315_576_000_001L })
        {
            var purge = new P.PurgeInstancesRequest
            {
                PurgeInstanceFilter = new P.PurgeInstanceFilter { Timeout = new Duration { Seconds = seconds } },
            };
            await Fails(() => client.PurgeInstancesAsync(purge).ResponseAsync, StatusCode.InvalidArgument, "timeout");
        }

        // Nanoseconds past a second (found by the fuzz run).
        var nanos = new P.PurgeInstancesRequest
        {
            PurgeInstanceFilter = new P.PurgeInstanceFilter { Timeout = new Duration { Seconds = 67, Nanos = 1_173_039_700 } },
            Recursive = true,
        };
        await Fails(() => client.PurgeInstancesAsync(nanos).ResponseAsync, StatusCode.InvalidArgument, "timeout");

        await Fails(() => client.StartInstanceAsync(new P.CreateInstanceRequest { Name = "A", ScheduledStartTimestamp = new Timestamp { Seconds = long.MaxValue } }).ResponseAsync,
            StatusCode.InvalidArgument, "scheduledStartTimestamp");
        await Fails(() => client.QueryInstancesAsync(new P.QueryInstancesRequest { Query = new P.InstanceQuery { CreatedTimeFrom = new Timestamp { Nanos = -1 } } }).ResponseAsync,
            StatusCode.InvalidArgument, "createdTimeFrom");
    }

    [Fact]
    public async Task Wrong_task_hub_headers_are_clear_errors()
    {
        await Fails(() => Client("").HelloAsync(new Empty()).ResponseAsync, StatusCode.InvalidArgument, "task hub name");
        await Fails(() => Client(new string('h', 65)).HelloAsync(new Empty()).ResponseAsync, StatusCode.InvalidArgument, "1-64");
        await Fails(() => Client("../h1").HelloAsync(new Empty()).ResponseAsync, StatusCode.InvalidArgument, "task hub name");
        await Fails(() => Client("nosuch").HelloAsync(new Empty()).ResponseAsync, StatusCode.NotFound, "task hub 'nosuch' not found");
        // Names are case-insensitive; the header is read the same way by the security check and the hub lookup.
        await Client("H1").HelloAsync(new Empty());
    }

    [Fact]
    public async Task Deeply_nested_json_payloads_are_opaque_and_round_trip()
    {
        var client = Client();
        string deep = new string('[', 50_000) + new string(']', 50_000);
        var started = await client.StartInstanceAsync(new P.CreateInstanceRequest { Name = "Nobody", Input = deep });
        var state = await client.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = started.InstanceId, GetInputsAndOutputs = true });
        Assert.Equal(deep, state.OrchestrationState.Input);
        await client.TerminateInstanceAsync(new P.TerminateRequest { InstanceId = started.InstanceId });
    }

    [Fact]
    public async Task Hostile_http_requests_get_4xx_and_leave_the_server_healthy()
    {
        using var http = fixture.Host.CreateHttpClient();
        using (var big = new ByteArrayContent(new byte[20 * 1024 * 1024]))
        {
            try
            {
                using var response = await http.PostAsync("/healthz", big);
                Assert.True((int)response.StatusCode < 500, $"{response.StatusCode}");
            }
            catch (HttpRequestException)
            {
                // The server may close the connection without reading a body it does not want.
            }
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/healthz"))
        {
            request.Headers.TryAddWithoutValidation("X-Huge", new string('h', 64 * 1024));
            using var response = await http.SendAsync(request);
            Assert.Equal(System.Net.HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        }

        using (var huge = new StringContent("{\"name\":\"A\",\"input\":\"" + new string('x', 9 * 1024 * 1024) + "\"}", Encoding.UTF8, "application/json"))
        {
            try
            {
                using var response = await http.PostAsync("/api/v1/taskhubs/h1/orchestrations", huge);
                Assert.Equal(System.Net.HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            }
            catch (HttpRequestException)
            {
                // Refused before the whole body was sent.
            }
        }

        using (var deep = new StringContent(new string('{', 100_000), Encoding.UTF8, "application/json"))
        {
            using var response = await http.PostAsync("/api/v1/taskhubs/h1/orchestrations", deep);
            Assert.True((int)response.StatusCode < 500, $"{response.StatusCode}");
        }

        Assert.Equal("Healthy", await http.GetStringAsync("/healthz"));
    }
}

/// <summary>Hostile inputs that have crashed the scheduler process; the scheduler runs out of process so a crash fails only this test.</summary>
public sealed class CrashRegressionTests
{
    [Fact]
    public async Task A_start_scheduled_months_ahead_does_not_take_the_scheduler_down()
    {
        await using var scheduler = await SchedulerProcess.StartAsync(["--DTS_TASK_HUB_NAMES=default"]);
        using var channel = GrpcChannel.ForAddress(scheduler.GrpcAddress);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        var soon = Timestamp.FromDateTime(DateTime.UtcNow.AddSeconds(1));
        var farAway = Timestamp.FromDateTime(DateTime.UtcNow.AddDays(60));

        await client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "soon", Name = "A", ScheduledStartTimestamp = soon });
        try
        {
            await client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "far", Name = "A", ScheduledStartTimestamp = farAway });
        }
        catch (RpcException ex)
        {
            Assert.Fail($"Scheduling a start 60 days ahead failed with {ex.StatusCode}: {ex.Status.Detail}");
        }

        // The hub's timer fires for 'soon' and re-arms for 'far'.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(scheduler.HasExited, scheduler.Obituary);
        var far = await client.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "far" });
        Assert.Equal(P.OrchestrationStatus.Pending, far.OrchestrationState.OrchestrationStatus);
        using var http = new HttpClient();
        Assert.True(await scheduler.IsHealthyAsync(http), scheduler.Obituary);
    }

    [Fact]
    public async Task A_durable_timer_months_ahead_is_accepted_and_does_not_take_the_scheduler_down()
    {
        await using var scheduler = await SchedulerProcess.StartAsync(["--DTS_TASK_HUB_NAMES=default"]);
        using var channel = GrpcChannel.ForAddress(scheduler.GrpcAddress);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        await using var worker = await RawWorker.ConnectAsync(client);
        await client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = "timer", Name = "A" });
        var item = await worker.NextOrchestratorAsync("timer");

        var response = new P.OrchestratorResponse { InstanceId = "timer", CompletionToken = item.CompletionToken };
        response.Actions.Add(new P.OrchestratorAction
        {
            Id = 0,
            CreateTimer = new P.CreateTimerAction { FireAt = Timestamp.FromDateTime(DateTime.UtcNow.AddDays(60)) },
        });
        try
        {
            await client.CompleteOrchestratorTaskAsync(response);
        }
        catch (RpcException ex)
        {
            Assert.Fail($"Completing with a timer 60 days ahead failed with {ex.StatusCode}: {ex.Status.Detail}. {scheduler.Obituary}");
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(scheduler.HasExited, scheduler.Obituary);
        var state = await client.GetInstanceAsync(new P.GetInstanceRequest { InstanceId = "timer" });
        Assert.Equal(P.OrchestrationStatus.Running, state.OrchestrationState.OrchestrationStatus);
    }
}
