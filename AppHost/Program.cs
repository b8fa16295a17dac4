var builder = DistributedApplication.CreateBuilder(args);

var scheduler = builder.AddProject<Projects.Scheduler>("scheduler");

builder.AddProject<Projects.Dashboard>("dashboard")
    .WithReference(scheduler)
    .WaitFor(scheduler);

builder.AddProject<Projects.SampleFunctionApp>("samples")
    .WithReference(scheduler)
    .WaitFor(scheduler);

builder.Build().Run();
