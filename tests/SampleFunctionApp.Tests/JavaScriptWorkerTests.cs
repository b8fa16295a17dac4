using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace SampleFunctionApp.Tests;

/// <summary>
/// The JavaScript sample worker (<c>SampleFunctionApp/js</c>, Node.js and @microsoft/durabletask-js) on the same
/// scheduler and task hub as the .NET sample: each runs only what it registered.
/// </summary>
[Collection(SamplesCollection.Name)]
public sealed class JavaScriptWorkerTests(SamplesFixture fixture) : IAsyncLifetime
{
    readonly HttpClient _http = fixture.Http;
    readonly StringBuilder _output = new();
    Process? _worker;

    public async Task InitializeAsync()
    {
        var folder = FindWorkerFolder();
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "@microsoft", "durabletask-js")))
        {
            await RunAsync("npm", "ci --no-audit --no-fund --loglevel=error", folder, TimeSpan.FromMinutes(5));
        }

        var start = new ProcessStartInfo("node", "worker.mjs")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // The address as the AppHost passes it (with the scheme the worker strips); the hub as a setting.
            Environment =
            {
                ["services__scheduler__grpc__0"] = fixture.SchedulerAddress,
                ["SCHEDULER_TASKHUB"] = SamplesFixture.TaskHub,
                ["SCHEDULER_API_KEY"] = SamplesFixture.ApiKey,
            },
        };
        _worker = Process.Start(start)!;
        _worker.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _worker.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _worker.BeginOutputReadLine();
        _worker.BeginErrorReadLine();
    }

    public async Task DisposeAsync()
    {
        if (_worker is { HasExited: false })
        {
            _worker.Kill(entireProcessTree: true);
            await _worker.WaitForExitAsync();
        }

        _worker?.Dispose();
    }

    [Fact]
    public async Task EachWorkerRunsOnlyWhatItRegistered()
    {
        // HelloCitiesJs exists only in the JavaScript worker, HelloCities only in the .NET sample. Started together,
        // each must reach its own worker: the other one would fail the instance as an unknown orchestration.
        var javaScript = await _http.StartAsync("HelloCitiesJs");
        var dotNet = await _http.StartAsync("HelloCities");

        foreach (var started in new[] { javaScript, dotNet })
        {
            JsonObject status;
            try
            {
                status = await _http.WaitForFinishAsync(started, TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\nworker output:\n{WorkerOutput()}", e);
            }

            Assert.True(status.RuntimeStatus() == "Completed", status.ToJsonString());
            Assert.Equal(
                ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!", "Hello, Cairo!", "Hello, Lima!"],
                status["output"]!.AsArray().Select(g => g!.GetValue<string>()));
        }

        Assert.Contains($"task hub '{SamplesFixture.TaskHub}'", WorkerOutput());
    }

    string WorkerOutput()
    {
        lock (_output) return _output.ToString();
    }

    static string FindWorkerFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "SampleFunctionApp", "js");
            if (File.Exists(Path.Combine(candidate, "worker.mjs")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException($"SampleFunctionApp/js not found above {AppContext.BaseDirectory}.");
    }

    static async Task RunAsync(string file, string arguments, string folder, TimeSpan timeout)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {arguments} exited with {process.ExitCode}:\n{await stdout}\n{await stderr}");
        }
    }
}
