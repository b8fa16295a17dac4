using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Grpc;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests.Infrastructure;

/// <summary>
/// A generic host running the real .NET SDK worker (optional) and client over gRPC against a scheduler,
/// addressing one task hub through the <c>taskhub</c> header.
/// </summary>
public sealed class TestApp : IAsyncDisposable
{
    readonly IHost _host;
    int _stopped;

    TestApp(IHost host, string hub)
    {
        _host = host;
        Hub = hub;
        Client = host.Services.GetRequiredService<DurableTaskClient>();
    }

    public string Hub { get; }
    public DurableTaskClient Client { get; }
    public IServiceProvider Services => _host.Services;

    /// <summary>Starts a client and, when <paramref name="tasks"/> is given, a worker with those orchestrations and activities.</summary>
    public static async Task<TestApp> StartAsync(
        SchedulerFixture scheduler,
        string hub,
        Action<DurableTaskRegistry>? tasks,
        ITestOutputHelper? output = null,
        Action<IDurableTaskWorkerBuilder>? worker = null,
        Action<GrpcDurableTaskWorkerOptions>? grpc = null,
        TimeSpan? shutdownTimeout = null)
    {
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        if (output is not null) builder.Logging.AddProvider(new TestOutputLoggerProvider(output));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = shutdownTimeout ?? TimeSpan.FromSeconds(5));

        if (tasks is not null)
        {
            builder.Services.AddDurableTaskWorker(b =>
            {
                b.AddTasks(tasks);
                b.UseGrpc(o =>
                {
                    o.Address = scheduler.Address;
                    o.Interceptors.Add(new TaskHubInterceptor(hub));
                    grpc?.Invoke(o);
                });
                worker?.Invoke(b);
            });
        }

        builder.Services.AddDurableTaskClient(b => b.UseGrpc(o =>
        {
            o.Address = scheduler.Address;
            o.Interceptors.Add(new TaskHubInterceptor(hub));
        }));

        var host = builder.Build();
        await host.StartAsync();
        return new TestApp(host, hub);
    }

    /// <summary>Stops the host (the worker disconnects from the scheduler).</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _host.StopWithinAsync(TimeSpan.FromSeconds(15));
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }
}

sealed class TestOutputLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(output, categoryName);
    public void Dispose() { }

    sealed class Logger(ITestOutputHelper output, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            try
            {
                output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}] {formatter(state, exception)}{(exception is null ? "" : " " + exception.GetType().Name + ": " + exception.Message)}");
            }
            catch (InvalidOperationException)
            {
                // The test already finished.
            }
        }
    }
}
