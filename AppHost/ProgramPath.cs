namespace Aspire.Hosting;

/// <summary>Finds the programs the AppHost runs as executables (redis-server, node, npm).</summary>
static class ProgramPath
{
    /// <summary>The full path of <paramref name="program"/> on the PATH (on Windows also with the PATHEXT extensions), or null.</summary>
    public static string? Find(string program)
    {
        string[] extensions = OperatingSystem.IsWindows()
            ? (Environment.GetEnvironmentVariable("PATHEXT") ?? ".EXE;.CMD").Split(';', StringSplitOptions.RemoveEmptyEntries)
            : [""];
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .SelectMany(dir => extensions.Select(ext => Path.Combine(dir, program + ext)))
            .FirstOrDefault(File.Exists);
    }
}
