using Microsoft.DurableTask.Client;
using SampleFunctionApp.Api;
using SampleFunctionApp.Hosting;

namespace SampleFunctionApp;

/// <summary>Builds the sample app: a Durable Task worker running the patterns, a client, and the HTTP API.</summary>
public static class SampleApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        builder.AddDurableTaskSamples();
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<SchedulerErrorHandler>();
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.MapDefaultEndpoints();
        app.MapOrchestrationEndpoints();
        app.MapEntityEndpoints();
        app.MapGet("/", (SchedulerConnection scheduler) => Results.Json(new
        {
            scheduler = scheduler.Address,
            taskHub = scheduler.TaskHub,
            start = "POST /api/orchestrators/{name}[?instanceId=...]  (HelloCities, WordCount, LongRunningJob, JobMonitor, ApprovalWorkflow, TransferFunds, ProcessOrders, PeriodicCleanup, HelloCitiesJs)",
            status = "GET /api/instances/{id}",
            entities = "POST /api/entities/{name}/{key}?op=...  |  GET /api/entities/{name}/{key}",
        }));

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var scheduler = app.Services.GetRequiredService<SchedulerConnection>();
            app.Logger.UsingScheduler(scheduler.Address, scheduler.TaskHub);
        });
        return app;
    }
}
