using Microsoft.Extensions.Hosting;

namespace DurableTask.Scheduler.Tests.Infrastructure;

public static class HostExtensions
{
    /// <summary>Stops a host, giving up after <paramref name="limit"/> (a worker stuck in a test must not hang the run).</summary>
    public static async Task StopWithinAsync(this IHost host, TimeSpan limit)
    {
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await host.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
