using Microsoft.DurableTask;

namespace SampleFunctionApp.Patterns;

/// <summary>
/// Fan-out/fan-in: start one activity per item without awaiting, then await them all and aggregate. The activities
/// run in parallel on every connected worker; the orchestration resumes once the last one reports back.
/// </summary>
/// <remarks>
/// <c>POST /api/orchestrators/WordCount</c> with body <c>["the quick brown fox", "jumps over", "the lazy dog"]</c>
/// returns <c>{"documents":3,"words":9}</c>.
/// </remarks>
public sealed class WordCount : TaskOrchestrator<string[]?, WordCountResult>
{
    public override async Task<WordCountResult> RunAsync(TaskOrchestrationContext context, string[]? documents)
    {
        documents ??= [];

        // Fan out: every call is scheduled in the same episode, so the scheduler receives them as one batch.
        var counts = documents.Select(document => context.CallActivityAsync<int>(nameof(CountWords), document)).ToList();

        // Fan in.
        var perDocument = await Task.WhenAll(counts);
        return new WordCountResult(documents.Length, perDocument.Sum());
    }
}

public sealed record WordCountResult(int Documents, int Words);

/// <summary>Counts the whitespace-separated words of one document.</summary>
public sealed class CountWords : TaskActivity<string?, int>
{
    public override Task<int> RunAsync(TaskActivityContext context, string? document)
        => Task.FromResult((document ?? "").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length);
}
