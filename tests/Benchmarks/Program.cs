using DurableTask.Benchmarks;
using DurableTask.Benchmarks.Backends;
using DurableTask.Benchmarks.Load;
using DurableTask.Benchmarks.Runner;

// One executable, four roles:
//   (default)            spawns a fresh backend and a load process per scenario and backend, prints a markdown table
//   --role backend-ours  runs the built scheduler (Scheduler.dll) as a child process and reports its pid
//   --role backend-reference  hosts the unthrottled Microsoft.DurableTask.InProcessTestHost sidecar in this process
//   --role load          SDK client + worker against --address; runs one scenario and writes JSON results
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

if (options.Help)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

return options.Role switch
{
    "orchestrate" => await BenchmarkRunner.RunAsync(options),
    "backend-ours" => await OursBackend.RunAsync(options),
    "backend-reference" => await ReferenceBackend.RunAsync(options),
    "load" => await LoadRunner.RunAsync(options),
    _ => Fail($"unknown role '{options.Role}'"),
};

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}
