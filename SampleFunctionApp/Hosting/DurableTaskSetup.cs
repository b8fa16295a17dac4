using System.Text.Json;
using Grpc.Net.Client;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Grpc;
using Microsoft.DurableTask.Converters;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Grpc;
using SampleFunctionApp.Patterns;

namespace SampleFunctionApp.Hosting;

public static class DurableTaskSetup
{
    /// <summary>camelCase, case-insensitive JSON: what curl users and the JavaScript worker send and expect.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Registers one gRPC channel to the scheduler, a Durable Task worker running every sample pattern, and a client.
    /// </summary>
    public static WebApplicationBuilder AddDurableTaskSamples(this WebApplicationBuilder builder)
    {
        var connection = SchedulerConnection.FromConfiguration(builder.Configuration);
        builder.Services.AddSingleton(connection);

        // One HTTP/2 channel for the worker's work-item stream and every client call. The channel only dials on
        // first use, so the app starts even while the scheduler is still coming up.
        builder.Services.AddSingleton(_ => GrpcChannel.ForAddress(connection.Address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                KeepAlivePingDelay = TimeSpan.FromSeconds(30),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            },
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        }));

        var converter = new JsonDataConverter(Json);

        builder.Services.AddDurableTaskWorker(worker =>
        {
            worker.AddTasks(registry => registry.AddSamplePatterns());
            worker.Configure(options =>
            {
                options.DataConverter = converter;
                options.EnableEntitySupport = true;
            });

            // Announce exactly what this worker runs, so work for other workers on the same task hub (the JavaScript
            // sample's HelloCitiesJs, for one) is never handed to it.
            worker.UseWorkItemFilters();

            worker.UseGrpc(_ => { });
            worker.Services.AddOptions<GrpcDurableTaskWorkerOptions>(worker.Name)
                .Configure<GrpcChannel>((options, channel) =>
                {
                    options.Channel = channel;
                    options.Interceptors.Add(new TaskHubInterceptor(connection.TaskHub, connection.ApiKey));
                });
        });

        builder.Services.AddDurableTaskClient(client =>
        {
            client.Configure(options =>
            {
                options.DataConverter = converter;
                options.EnableEntitySupport = true;
            });

            client.UseGrpc(_ => { });
            client.Services.AddOptions<GrpcDurableTaskClientOptions>(client.Name)
                .Configure<GrpcChannel>((options, channel) =>
                {
                    options.Channel = channel;
                    options.Interceptors.Add(new TaskHubInterceptor(connection.TaskHub, connection.ApiKey));
                });
        });

        return builder;
    }
}
