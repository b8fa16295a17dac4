using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using DurableTask.Scheduler.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>
/// A scheduler hosted in-process on free loopback ports with the given security settings, optionally over TLS,
/// with extra endpoints mapped after the scheduler's own, and every log line kept for assertions.
/// </summary>
public sealed class SecureSchedulerHost : IAsyncDisposable
{
    static readonly SemaphoreSlim StartGate = new(1, 1);
    readonly WebApplication _app;
    string? _dataPath;

    SecureSchedulerHost(WebApplication app, int grpcPort, int httpPort, X509Certificate2? certificate, CapturedLogs logs)
    {
        _app = app;
        GrpcPort = grpcPort;
        HttpPort = httpPort;
        Certificate = certificate;
        Logs = logs;
    }

    public int GrpcPort { get; }
    public int HttpPort { get; }
    public X509Certificate2? Certificate { get; }
    public CapturedLogs Logs { get; }
    public IServiceProvider Services => _app.Services;
    string Scheme => Certificate is null ? "http" : "https";
    public string GrpcAddress => $"{Scheme}://127.0.0.1:{GrpcPort}";
    public string HttpAddress => $"{Scheme}://127.0.0.1:{HttpPort}";

    public static async Task<SecureSchedulerHost> StartAsync(IEnumerable<string> settings, X509Certificate2? certificate = null,
        Action<WebApplication>? map = null)
    {
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            int grpcPort = FreePort(), httpPort = FreePort();
            while (httpPort == grpcPort) httpPort = FreePort();
            var logs = new CapturedLogs();
            string dataPath = TestStore.NewDataPath();
            string[] args =
            [
                $"--Scheduler:GrpcPort={grpcPort}",
                $"--Scheduler:HttpPort={httpPort}",
                "--Scheduler:BindAddress=127.0.0.1",
                "--Logging:LogLevel:Default=Warning",
                $"--Scheduler:Store={TestStore.Name}",
                $"--Scheduler:DataPath={dataPath}",
                $"--Logging:LogLevel:{DurableTask.Scheduler.Security.AuditLog.Category}=Information",
                .. settings,
            ];

            WebApplication? app = null;
            await StartGate.WaitAsync();
            try
            {
                var builder = WebApplication.CreateBuilder(args);
                builder.AddScheduler();
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(logs);
                app = builder.Build();
                app.MapScheduler();
                map?.Invoke(app);
                await app.StartAsync();
            }
            catch (IOException ex)
            {
                last = ex;
                if (app is not null) await app.DisposeAsync();
                continue;
            }
            finally
            {
                StartGate.Release();
            }

            var host = new SecureSchedulerHost(app, grpcPort, httpPort, certificate, logs) { _dataPath = dataPath };
            await host.WaitHealthyAsync();
            return host;
        }

        throw new InvalidOperationException("Could not bind the scheduler to free ports.", last);
    }

    /// <summary>An HTTP client for the HTTP port that trusts the test certificate.</summary>
    public HttpClient CreateHttpClient() => new(TestCertificates.TrustingHandler(Certificate))
    {
        BaseAddress = new Uri(HttpAddress),
        Timeout = TimeSpan.FromSeconds(30),
    };

    async Task WaitHealthyAsync()
    {
        using var http = CreateHttpClient();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync("/healthz");
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("/healthz did not answer 200 within 30 s.");
    }

    public async ValueTask DisposeAsync()
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
        TestStore.Delete(_dataPath);
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

public sealed record LogEntry(string Category, LogLevel Level, string Message, Exception? Exception);

/// <summary>Keeps every log line of a scheduler.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    readonly ConcurrentQueue<LogEntry> _entries = new();

    public IReadOnlyList<LogEntry> Entries => _entries.ToArray();

    public IEnumerable<LogEntry> Category(string category) => _entries.Where(e => e.Category == category);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (owner._entries.Count < 200_000) owner._entries.Enqueue(new LogEntry(category, logLevel, formatter(state, exception), exception));
        }
    }
}

/// <summary>The store the security tests run on: <c>SCHEDULER_TEST_STORE</c> (as the protocol suite), default <c>memory</c>; data in a fresh temporary folder.</summary>
public static class TestStore
{
    public static string Name => Environment.GetEnvironmentVariable("SCHEDULER_TEST_STORE") ?? "memory";

    public static string NewDataPath() => Path.Combine(Path.GetTempPath(), "dts-security-tests", Guid.NewGuid().ToString("N"));

    public static void Delete(string? path)
    {
        try
        {
            if (path is not null && Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
