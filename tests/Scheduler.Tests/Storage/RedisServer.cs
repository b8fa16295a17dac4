using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace DurableTask.Scheduler.Tests.Storage;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port with an append-only file in a folder of its own.
/// It can be killed, paused and started again on the same port and data. A missing redis-server fails the test.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    readonly TempFolder _folder = new("redis");
    readonly string[] _extraArgs;
    Process? _process;

    RedisServer(int port, string[] extraArgs)
    {
        Port = port;
        _extraArgs = extraArgs;
        Directory.CreateDirectory(_folder.Path);
    }

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public string DataPath => _folder.Path;

    /// <summary>Starts a server on a free port, with extra redis-server settings such as <c>--requirepass</c>.</summary>
    public static async Task<RedisServer> StartAsync(params string[] extraArgs)
    {
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var server = new RedisServer(FreePort(), extraArgs);
            try
            {
                await server.StartAsync(TimeSpan.FromSeconds(20));
                return server;
            }
            catch (Exception ex) when (ex is not FileNotFoundException)
            {
                last = ex;
                await server.DisposeAsync();
            }
        }

        throw new InvalidOperationException("redis-server did not start on a free port.", last);
    }

    /// <summary>A server that is not started yet: its port is free (for a while).</summary>
    public static RedisServer Reserve() => new(FreePort(), []);

    /// <summary>Starts (again) on the same port and folder and waits until it answers PING (after loading its AOF).</summary>
    public async Task StartAsync(TimeSpan? timeout = null)
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("redis-server is already running.");
        var start = new ProcessStartInfo(FindRedisServer())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--dir", _folder.Path, "--daemonize", "no", "--protected-mode", "no", "--logfile", "",
        }.Concat(_extraArgs))
        {
            start.ArgumentList.Add(arg);
        }

        var log = new StringBuilder();
        var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                string output;
                lock (log) output = log.ToString();
                throw new InvalidOperationException($"redis-server exited with code {process.ExitCode}: {output}");
            }

            if (await PingAsync()) return;
            await Task.Delay(20);
        }

        throw new TimeoutException($"redis-server on port {Port} did not answer PING in time.");
    }

    /// <summary>SIGKILL: no shutdown, no final AOF rewrite.</summary>
    public async Task KillAsync()
    {
        if (_process is null) return;
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>SIGSTOP: the connection stays open but nothing answers.</summary>
    public void Pause() => Signal(19);

    /// <summary>SIGCONT.</summary>
    public void Resume() => Signal(18);

    void Signal(int signal)
    {
        if (_process is null) throw new InvalidOperationException("redis-server is not running.");
        if (kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, Port, cts.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cts.Token);
            var buffer = new byte[64];
            int n = await stream.ReadAsync(buffer, cts.Token);
            string reply = Encoding.ASCII.GetString(buffer, 0, n);
            return reply.StartsWith("+PONG", StringComparison.Ordinal) || reply.StartsWith("-NOAUTH", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            try
            {
                Resume();
            }
            catch (InvalidOperationException)
            {
            }

            await KillAsync();
        }

        _folder.Dispose();
    }

    static string FindRedisServer()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Append("/usr/local/bin").Append("/usr/sbin"))
        {
            string candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate)) return candidate;
        }

        throw new FileNotFoundException("redis-server is not installed (apt-get install redis-server); the Redis store tests need it.");
    }

    static int FreePort() => StablePorts.Next();

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);
}

/// <summary>One redis-server shared by the tests of a class.</summary>
public sealed class RedisServerFixture : IAsyncLifetime
{
    RedisServer? _server;

    public RedisServer Server => _server ?? throw new InvalidOperationException("redis-server is not started.");

    public async Task InitializeAsync() => _server = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }
}
