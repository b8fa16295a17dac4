DurableTask.Dashboard.DashboardApp.Build(args).Run();
