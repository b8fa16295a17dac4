using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Function chaining: activities run one after another, each awaited before the next starts. If the app stops midway,
/// the orchestration replays from its history and resumes after the last completed greeting.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/HelloCities</c> (no body) returns
/// <c>["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"]</c>.
/// The benchmarks use this orchestration too; the JavaScript worker runs the same chain as <c>HelloCitiesJs</c>.
/// </remarks>
public sealed class HelloCities : TaskOrchestrator<object?, List<string>>
{
    public static readonly string[] Cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

    public override async Task<List<string>> RunAsync(TaskOrchestrationContext context, object? input)
    {
        var greetings = new List<string>(Cities.Length);
        foreach (var city in Cities)
        {
            greetings.Add(await context.CallActivityAsync<string>(nameof(SayHello), city));
        }

        return greetings;
    }
}

/// <summary>Returns <c>Hello, {name}!</c>.</summary>
public sealed class SayHello(ILogger<SayHello> logger) : TaskActivity<string, string>
{
    public override Task<string> RunAsync(TaskActivityContext context, string name)
    {
        logger.SayingHello(name, context.InstanceId);
        return Task.FromResult($"Hello, {name}!");
    }
}
