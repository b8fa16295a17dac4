using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DurableTask.Benchmarks.Backends;

/// <summary>A fresh, empty redis-server (from PATH) on a free loopback port, with its data in a temporary folder.</summary>
sealed class RedisServer : IAsyncDisposable
{
    readonly Process _process;
    readonly string _dir;
    readonly int _port;

    RedisServer(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        _port = port;
    }

    /// <summary>The value of <c>ConnectionStrings:store</c>.</summary>
    public string Endpoint => $"127.0.0.1:{_port}";

    public int Pid => _process.Id;

    public static async Task<RedisServer> StartAsync(TimeSpan limit)
    {
        var port = Ports.GetFree();
        var dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"dts-bench-redis-{Guid.NewGuid():N}")).FullName;
        var start = new ProcessStartInfo("redis-server") { UseShellExecute = false, WorkingDirectory = dir };
        foreach (var arg in new[]
                 {
                     "--port", $"{port}", "--bind", "127.0.0.1", "--protected-mode", "no", "--dir", dir,
                     // Durable the way a production Redis for the scheduler would be: an append-only file fsynced
                     // every second, no snapshots.
                     "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                     // Its output joins the backend's, which shows only in error messages.
                     "--loglevel", "warning",
                 })
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("could not start redis-server");
        }
        catch
        {
            Directory.Delete(dir, recursive: true);
            throw;
        }

        var server = new RedisServer(process, dir, port);
        var deadline = Stopwatch.StartNew();
        while (!await server.PingAsync())
        {
            if (process.HasExited || deadline.Elapsed > limit)
            {
                await server.DisposeAsync();
                throw new InvalidOperationException($"redis-server did not answer on port {port} (exit: {(process.HasExited ? process.ExitCode : "still running")})");
            }

            await Task.Delay(50);
        }

        return server;
    }

    async Task<bool> PingAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, _port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), timeout.Token);
            var reply = new byte[16];
            var read = await stream.ReadAsync(reply, timeout.Token);
            return Encoding.ASCII.GetString(reply, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
