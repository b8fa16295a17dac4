// The topology, read top to bottom like the architecture diagram:
//   store (Redis)  <-  scheduler (gRPC + HTTP)  <-  dashboard (HTTP), samples (gRPC), samples-js (gRPC, Node.js)
var builder = DistributedApplication.CreateBuilder(args);

// Infrastructure: a Redis container with persistence and a data volume; locally, when no container runtime answers,
// Debian's redis-server instead (see StoreResourceExtensions).
var store = builder.AddStore("store");

// Services: the scheduler keeps its state in the store and serves the Durable Task protocol.
var taskHubNames = builder.AddParameter("task-hub-names", "default", publishValueAsDefault: true);
var schedulerStore = builder.AddParameter("scheduler-store", "redis", publishValueAsDefault: true);

var scheduler = builder.AddScheduler("scheduler", taskHubNames, schedulerStore)
    .WithReference(store)
    .WaitFor(store);

// Apps: they find the scheduler through service discovery (http://_grpc.scheduler, http://_http.scheduler).
builder.AddProject<Projects.Dashboard>("dashboard")
    .WithDefaultHttpEndpoint()
    .WithReference(scheduler)
    .WaitFor(scheduler)
    .WithHttpHealthCheck("/health");

builder.AddProject<Projects.SampleFunctionApp>("samples")
    .WithDefaultHttpEndpoint()
    .WithReference(scheduler)
    .WaitFor(scheduler)
    .WithHttpHealthCheck("/health");

// The JavaScript sample worker (HelloCitiesJs), when Node.js is installed; local runs only (see JavaScriptWorkerExtensions).
builder.AddJavaScriptWorker("samples-js", scheduler);

builder.Build().Run();
