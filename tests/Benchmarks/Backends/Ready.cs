namespace DurableTask.Benchmarks.Backends;

/// <summary>The line a backend role prints once it serves requests, and how it is told to stop.</summary>
static class Ready
{
    const string Prefix = "BENCH-READY ";

    public static void Announce(int pid, string address)
    {
        Console.Out.WriteLine($"{Prefix}pid={pid} address={address}");
        Console.Out.Flush();
    }

    public static bool TryParse(string line, out int pid, out string address)
    {
        pid = 0;
        address = "";
        if (!line.StartsWith(Prefix, StringComparison.Ordinal))
            return false;

        foreach (var part in line[Prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("pid=", StringComparison.Ordinal))
                pid = int.Parse(part[4..], System.Globalization.CultureInfo.InvariantCulture);
            else if (part.StartsWith("address=", StringComparison.Ordinal))
                address = part[8..];
        }

        return pid > 0 && address.Length > 0;
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
