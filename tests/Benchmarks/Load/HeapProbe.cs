using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace DurableTask.Benchmarks.Load;

/// <summary>
/// The live managed heap of .NET processes, read from outside through the runtime's diagnostics port: an EventPipe
/// session with the GC heap-collect keyword makes the runtime run a full blocking collection, and the heap statistics
/// event that follows gives the bytes it found alive in each generation (the generations' sizes would also count the
/// free space between objects, which a collection does not always compact away). The difference between two readings, divided by
/// the instances finished in between, is what each finished instance keeps in memory, without the garbage that
/// makes the process's RSS move.
/// </summary>
sealed class HeapProbe(IReadOnlyList<int> pids)
{
    const long GcKeyword = 0x1;
    const long GcHeapCollectKeyword = 0x800000;

    /// <summary>
    /// The live heap once it has settled: after <paramref name="quiet"/>, read every 2 s until two readings agree within
    /// 1 % (at most 8 readings). Right after a burst of calls the heap keeps shrinking for some seconds (objects waiting
    /// for finalization, per-stream state that Kestrel pools and expires after 5 s unused), so a single reading, or two
    /// taken before the pool expired, would count those too.
    /// </summary>
    public async Task<long?> ReadSettledAsync(TimeSpan quiet, CancellationToken ct)
    {
        await Task.Delay(quiet, ct);
        var last = await ReadAsync(ct);
        for (var i = 1; i < 8 && last is { } previous; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            last = await ReadAsync(ct);
            if (last is { } current && Math.Abs(current - previous) <= previous / 100) break;
        }

        return last;
    }

    /// <summary>The summed heap after a full collection in each process, or null when one could not be read.</summary>
    public async Task<long?> ReadAsync(CancellationToken ct)
    {
        long total = 0;
        foreach (var pid in pids)
        {
            var bytes = await ReadOneAsync(pid, ct);
            if (bytes is null) return null;
            total += bytes.Value;
        }

        return total;
    }

    static async Task<long?> ReadOneAsync(int pid, CancellationToken ct)
    {
        try
        {
            var client = new DiagnosticsClient(pid);
            var providers = new[]
            {
                new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, GcKeyword | GcHeapCollectKeyword),
            };
            using var session = await client.StartEventPipeSessionAsync(providers, requestRundown: false, circularBufferMB: 16, ct);
            var found = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            var induced = false;
            var reader = Task.Run(() =>
            {
                using var source = new EventPipeEventSource(session.EventStream);
                source.Clr.GCStart += e => induced |= e.Reason is Microsoft.Diagnostics.Tracing.Parsers.Clr.GCReason.Induced && e.Depth == 2;
                source.Clr.GCHeapStats += e =>
                {
                    if (!induced) return;
                    found.TrySetResult(e.TotalPromotedSize0 + e.TotalPromotedSize1 + e.TotalPromotedSize2 + e.TotalPromotedSize3 + e.TotalPromotedSize4);
                    source.StopProcessing();
                };
                source.Process();
            }, ct);

            var done = await Task.WhenAny(found.Task, Task.Delay(TimeSpan.FromSeconds(30), ct));
            try
            {
                await session.StopAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is ServerNotAvailableException or IOException or TimeoutException)
            {
            }

            await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None));
            return done == found.Task ? found.Task.Result : null;
        }
        catch (Exception e) when (e is ServerNotAvailableException or UnsupportedCommandException or IOException or TimeoutException)
        {
            Console.Error.WriteLine($"heap of process {pid} not readable: {e.Message}");
            return null;
        }
    }
}
