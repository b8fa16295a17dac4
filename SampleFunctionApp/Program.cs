using SampleFunctionApp;

SampleApp.Build(args).Run();
