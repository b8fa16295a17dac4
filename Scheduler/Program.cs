using DurableTask.Scheduler.Hosting;

var app = SchedulerHost.Build(args);
app.Run();
