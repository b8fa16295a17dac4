namespace DurableTask.Benchmarks.Backends;

/// <summary>The line a backend role prints once it serves requests, and how it is told to stop.</summary>
static class Ready
{
    const string Prefix = "BENCH-READY ";

    /// <summary>
    /// What a backend serves with: the processes to measure, the gRPC address of each (in the same order), and the
    /// redis-server they share, if any.
    /// </summary>
    public sealed record Backend(IReadOnlyList<int> Pids, IReadOnlyList<string> Addresses, int? RedisPid);

    public static void Announce(Backend backend)
    {
        var redis = backend.RedisPid is int pid ? $" redis-pid={pid}" : "";
        Console.Out.WriteLine($"{Prefix}pid={string.Join(',', backend.Pids)} address={string.Join(',', backend.Addresses)}{redis}");
        Console.Out.Flush();
    }

    public static bool TryParse(string line, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Backend? backend)
    {
        backend = null;
        if (!line.StartsWith(Prefix, StringComparison.Ordinal))
            return false;

        int[] pids = [];
        string[] addresses = [];
        int? redisPid = null;
        foreach (var part in line[Prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("pid=", StringComparison.Ordinal))
                pids = part[4..].Split(',').Select(p => int.Parse(p, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            else if (part.StartsWith("address=", StringComparison.Ordinal))
                addresses = part[8..].Split(',');
            else if (part.StartsWith("redis-pid=", StringComparison.Ordinal))
                redisPid = int.Parse(part[10..], System.Globalization.CultureInfo.InvariantCulture);
        }

        if (pids.Length == 0 || pids.Length != addresses.Length)
            return false;
        backend = new Backend(pids, addresses, redisPid);
        return true;
    }

    /// <summary>A backend runs until its standard input closes (the parent exited or closed it) or it is signalled.</summary>
    public static async Task WaitForShutdownAsync(CancellationToken stopping)
    {
        var stdinClosed = Task.Run(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (stdin.Read(buffer, 0, buffer.Length) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
        });

        var signalled = Task.Delay(Timeout.Infinite, stopping);
        await Task.WhenAny(stdinClosed, signalled).ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
