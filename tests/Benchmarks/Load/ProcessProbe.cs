using System.Diagnostics;
using System.Globalization;

namespace DurableTask.Benchmarks.Load;

/// <summary>
/// CPU time and resident memory of other processes, summed (the replicas of one backend), from /proc (Linux) or the
/// Process API elsewhere.
/// </summary>
sealed class ProcessProbe(IReadOnlyList<int> pids)
{
    public readonly record struct Sample(TimeSpan Cpu, long RssBytes, long PeakRssBytes);

    public Sample Read()
    {
        var total = new Sample();
        foreach (var pid in pids)
        {
            var one = Read(pid);
            total = new Sample(total.Cpu + one.Cpu, total.RssBytes + one.RssBytes, total.PeakRssBytes + one.PeakRssBytes);
        }

        return total;
    }

    static Sample Read(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            // /proc/<pid>/stat: fields 14 and 15 (1-based) are utime and stime in clock ticks; the command name
            // (field 2) may contain spaces, so count from the closing parenthesis.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            var cpu = TimeSpan.FromSeconds(ticks / (double)ClockTicksPerSecond);

            long rss = 0, peak = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = Kilobytes(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    peak = Kilobytes(line);
            }

            return new Sample(cpu, rss, peak);
        }

        using var process = Process.GetProcessById(pid);
        return new Sample(process.TotalProcessorTime, process.WorkingSet64, process.PeakWorkingSet64);
    }

    static long Kilobytes(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;

    static readonly long ClockTicksPerSecond = ReadClockTicks();

    static long ReadClockTicks()
    {
        try
        {
            var value = sysconf(2 /* _SC_CLK_TCK */);
            return value > 0 ? value : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    static extern long sysconf(int name);
}
