using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace DurableTask.Benchmarks.Backends;

static class Dotnet
{
    /// <summary>The <c>dotnet</c> host running this program, so children use the same runtime.</summary>
    public static string HostPath { get; } = FindHost();

    static string FindHost()
    {
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet")
            return self;

        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk) ? fromSdk : "dotnet";
    }

    /// <summary>
    /// Children must not inherit telemetry exporters or a development environment from the shell, which would add
    /// work to one backend and not the other.
    /// </summary>
    public static void ScrubEnvironment(ProcessStartInfo start)
    {
        foreach (var key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("OTEL_", StringComparison.Ordinal) ||
                key is "ASPNETCORE_ENVIRONMENT" or "DOTNET_ENVIRONMENT" or "ASPNETCORE_URLS" or "DOTNET_gcServer")
            {
                start.Environment.Remove(key);
            }
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
    }
}

static class Ports
{
    public static int GetFree()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
