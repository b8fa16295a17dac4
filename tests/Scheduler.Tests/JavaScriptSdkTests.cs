using System.Diagnostics;
using DurableTask.Scheduler.Tests.Infrastructure;
using Microsoft.DurableTask.Client;
using Xunit.Abstractions;

namespace DurableTask.Scheduler.Tests;

/// <summary>The JavaScript SDK (npm <c>@microsoft/durabletask-js</c> 0.4.0) runs an activity sequence against the scheduler.</summary>
public sealed class JavaScriptSdkTests(SchedulerFixture scheduler, ITestOutputHelper output) : IClassFixture<SchedulerFixture>
{
    [Fact]
    public async Task JsWorkerAndClient_RunActivitySequence()
    {
        string jsDir = Path.Combine(RepoRoot(), "tests", "js");
        Assert.True(File.Exists(Path.Combine(jsDir, "node_modules", "@microsoft", "durabletask-js", "package.json")),
            $"The JavaScript SDK is not installed: run `npm ci` in {jsDir}.");

        string hub = SchedulerFixture.NewHub("js");
        var (exitCode, stdout, stderr) = await RunNodeAsync(jsDir, ["sequence.mjs", scheduler.HostAndPort, hub], TimeSpan.FromSeconds(90));
        output.WriteLine($"exit code {exitCode}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");

        Assert.True(exitCode == 0, $"node sequence.mjs exited with {exitCode}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string result = Assert.Single(lines, l => l.StartsWith("RESULT ", StringComparison.Ordinal))["RESULT ".Length..];
        string instanceId = Assert.Single(lines, l => l.StartsWith("INSTANCE ", StringComparison.Ordinal))["INSTANCE ".Length..];
        Assert.Equal("[\"Hello, Tokyo!\",\"Hello, Seattle!\",\"Hello, London!\"]", result);

        // The .NET client sees the same instance in the same task hub.
        await using var app = await TestApp.StartAsync(scheduler, hub, tasks: null, output);
        var state = await app.Client.GetInstanceAsync(instanceId, getInputsAndOutputs: true);
        Assert.NotNull(state);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, state.RuntimeStatus);
        Assert.Equal("sequence", state.Name);
        Assert.Equal(["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"], state.ReadOutputAs<string[]>()!);
    }

    [Fact]
    public async Task JsWorkerAndClient_RunEntities()
    {
        string jsDir = Path.Combine(RepoRoot(), "tests", "js");
        Assert.True(File.Exists(Path.Combine(jsDir, "node_modules", "@microsoft", "durabletask-js", "package.json")),
            $"The JavaScript SDK is not installed: run `npm ci` in {jsDir}.");

        string hub = SchedulerFixture.NewHub("jse");
        var (exitCode, stdout, stderr) = await RunNodeAsync(jsDir, ["entities.mjs", scheduler.HostAndPort, hub], TimeSpan.FromSeconds(90));
        output.WriteLine($"exit code {exitCode}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");

        Assert.True(exitCode == 0, $"node entities.mjs exited with {exitCode}: {stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string result = Assert.Single(lines, l => l.StartsWith("RESULT ", StringComparison.Ordinal))["RESULT ".Length..];
        // 10 client signals + 5 from the call; the critical section copies a (15) into b; no lock is left behind.
        Assert.Equal("{\"called\":15,\"locked\":15,\"b\":15,\"lockedBy\":null}", result);
    }

    static async Task<(int ExitCode, string Stdout, string Stderr)> RunNodeAsync(string workingDirectory, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("node")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args) psi.ArgumentList.Add(arg);

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Fail($"Node.js is required for this test ({ex.Message}); install it and run `npm ci` in {workingDirectory}.");
            throw;
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"node did not exit within {timeout.TotalSeconds} s. stderr: {await stderr}");
            }

            return (process.ExitCode, await stdout, await stderr);
        }
    }

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Aspire.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"Aspire.sln not found above {AppContext.BaseDirectory}.");
    }
}
