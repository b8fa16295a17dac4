using System.Net;
using System.Net.Sockets;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// Ports for processes that are killed and started again on the same port (schedulers, redis-server). They come from
/// below the kernel's ephemeral range (Linux: 32768-60999 by default), never from it: while such a process is down,
/// an outgoing connection could otherwise be given its port as the local port, and the restart would fail to bind.
/// </summary>
public static class StablePorts
{
    const int First = 20000, Last = 32000;
    static readonly HashSet<int> Given = new();

    /// <summary>A port that was free a moment ago and that no other caller in this process was given.</summary>
    public static int Next()
    {
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            int port = Random.Shared.Next(First, Last);
            lock (Given)
            {
                if (Given.Contains(port)) continue;
                try
                {
                    var listener = new TcpListener(IPAddress.Loopback, port);
                    listener.Start();
                    listener.Stop();
                }
                catch (SocketException)
                {
                    continue;
                }

                Given.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"no free port between {First} and {Last}");
    }
}
