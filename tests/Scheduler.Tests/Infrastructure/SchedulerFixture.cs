using System.Net;
using System.Net.Sockets;
using DurableTask.Scheduler.Hosting;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Infrastructure;

/// <summary>
/// Hosts one scheduler in-process on free loopback ports for a test class (or collection).
/// Derived fixtures pass extra command-line settings.
/// </summary>
public class SchedulerFixture : IAsyncLifetime
{
    // SchedulerHost.Build touches process-wide telemetry registration; fixtures of classes running in
    // parallel start one after the other.
    static readonly SemaphoreSlim StartGate = new(1, 1);

    WebApplication? _app;
    GrpcChannel? _channel;

    /// <summary>Settings added to the command line of this scheduler, e.g. <c>--Scheduler:MaxPayloadBytes=1000</c>.</summary>
    protected virtual IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true"];

    /// <summary>A fresh folder for a durable store's files.</summary>
    public string DataPath { get; } = Path.Combine(Path.GetTempPath(), "dts-tests", Guid.NewGuid().ToString("N"));

    public int GrpcPort { get; private set; }
    public int HttpPort { get; private set; }

    /// <summary>gRPC endpoint as a URI, for the .NET SDK (<c>http://127.0.0.1:port</c>).</summary>
    public string Address => $"http://127.0.0.1:{GrpcPort}";

    /// <summary>gRPC endpoint as <c>host:port</c>, for the JavaScript SDK.</summary>
    public string HostAndPort => $"127.0.0.1:{GrpcPort}";

    /// <summary>The scheduler's services, for tests that look at its parts directly.</summary>
    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("The scheduler is not started.");

    /// <summary>A channel to the scheduler shared by raw protocol calls.</summary>
    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("The scheduler is not started.");

    /// <summary>A raw protocol client addressing <paramref name="hub"/> (null = no <c>taskhub</c> header).</summary>
    public TaskHubSidecarService.TaskHubSidecarServiceClient Raw(string? hub)
    {
        CallInvoker invoker = hub is null ? Channel.CreateCallInvoker() : Channel.Intercept(new TaskHubInterceptor(hub));
        return new TaskHubSidecarService.TaskHubSidecarServiceClient(invoker);
    }

    /// <summary>A fresh task hub name; the fixture runs with dynamic task hubs unless a derived one says otherwise.</summary>
    public static string NewHub(string prefix = "t") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 1 + 20, 60)];

    public async Task InitializeAsync()
    {
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            GrpcPort = FreePort();
            HttpPort = FreePort();
            while (HttpPort == GrpcPort) HttpPort = FreePort();
            string[] args =
            [
                $"--Scheduler:GrpcPort={GrpcPort}",
                $"--Scheduler:HttpPort={HttpPort}",
                "--Scheduler:BindAddress=127.0.0.1",
                // The protocol suite runs on the in-memory store unless SCHEDULER_TEST_STORE names another
                // (e.g. sqlite, to run every protocol test through the durable commit path).
                $"--Scheduler:Store={Environment.GetEnvironmentVariable("SCHEDULER_TEST_STORE") ?? "memory"}",
                $"--Scheduler:DataPath={DataPath}",
                $"--ConnectionStrings:store={Environment.GetEnvironmentVariable("SCHEDULER_TEST_REDIS") ?? ""}",
                "--Logging:LogLevel:Default=Warning",
                "--Logging:LogLevel:Microsoft.AspNetCore=Warning",
                .. ExtraArgs,
            ];

            await StartGate.WaitAsync();
            try
            {
                _app = SchedulerHost.Build(args);
                await _app.StartAsync();
            }
            catch (IOException ex)
            {
                // A port was taken between picking and binding: pick again.
                last = ex;
                if (_app is not null) await _app.DisposeAsync();
                _app = null;
                continue;
            }
            finally
            {
                StartGate.Release();
            }

            await WaitHealthyAsync();
            _channel = GrpcChannel.ForAddress(Address, new GrpcChannelOptions
            {
                MaxReceiveMessageSize = null,
                MaxSendMessageSize = null,
            });
            return;
        }

        throw new InvalidOperationException("Could not bind the scheduler to free ports.", last);
    }

    async Task WaitHealthyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        HttpStatusCode? lastStatus = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync($"http://127.0.0.1:{HttpPort}/healthz");
                lastStatus = response.StatusCode;
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"/healthz did not answer 200 within 30 s (last status: {lastStatus?.ToString() ?? "no answer"}).");
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        if (_app is not null)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _app.StopAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
            }

            await _app.DisposeAsync();
        }

        try
        {
            if (Directory.Exists(DataPath)) Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a store that did not close in time; the folder is in the temp directory.
        }
    }

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>Only the task hubs <c>a</c> and <c>b</c> exist; no hub is created on demand.</summary>
public sealed class StaticHubsSchedulerFixture : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs => ["--DTS_TASK_HUB_NAMES=a,b", "--DTS_USE_DYNAMIC_TASK_HUBS=false"];
}

/// <summary>Payloads are limited to 1,000 bytes.</summary>
public sealed class SmallPayloadSchedulerFixture : SchedulerFixture
{
    public const int Limit = 1000;
    protected override IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true", $"--Scheduler:MaxPayloadBytes={Limit}"];
}

/// <summary>Health pings every second; past history of any size is streamed to workers that can stream it.</summary>
public sealed class WorkItemSchedulerFixture : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs =>
    [
        "--DTS_USE_DYNAMIC_TASK_HUBS=true",
        "--Scheduler:HealthPingInterval=00:00:01",
        "--Scheduler:HistoryStreamingThresholdBytes=1",
        "--Scheduler:DisconnectGracePeriod=00:00:01",
    ];
}

/// <summary>A scheduler whose large fan-ins never wait for more results (<c>Scheduler:MaxFanInHold=0</c>).</summary>
public sealed class NoFanInHoldSchedulerFixture : SchedulerFixture
{
    protected override IEnumerable<string> ExtraArgs => ["--DTS_USE_DYNAMIC_TASK_HUBS=true", "--Scheduler:MaxFanInHold=00:00:00"];
}
