using System.Net;
using System.Text.Json;

namespace DurableTask.Dashboard.Auth;

public enum SchedulerAuthentication
{
    /// <summary>The scheduler answered without credentials and says authentication is off.</summary>
    Off,

    /// <summary>The scheduler wants credentials.</summary>
    On,

    /// <summary>The scheduler could not be asked (not reachable, or an unexpected answer).</summary>
    Unknown,
}

/// <summary>
/// Asks the scheduler (<c>GET /api/v1/</c> without credentials) whether it has authentication on, and remembers the
/// answer for a while. Sign-in is skipped only on a clear "off"; an unreachable scheduler means sign-in is asked for.
/// </summary>
public sealed class SchedulerAuthProbe(IHttpClientFactory factory, ILogger<SchedulerAuthProbe> logger, TimeProvider time)
{
    public const string HttpClientName = "scheduler-probe";
    static readonly TimeSpan KnownFor = TimeSpan.FromSeconds(30);
    static readonly TimeSpan UnknownFor = TimeSpan.FromSeconds(2);

    readonly SemaphoreSlim _gate = new(1, 1);
    SchedulerAuthentication _last = SchedulerAuthentication.Unknown;
    DateTimeOffset _validUntil = DateTimeOffset.MinValue;

    public async Task<SchedulerAuthentication> GetAsync(CancellationToken ct = default)
    {
        if (time.GetUtcNow() < _validUntil) return _last;
        await _gate.WaitAsync(ct);
        try
        {
            if (time.GetUtcNow() < _validUntil) return _last;
            _last = await AskAsync(ct);
            _validUntil = time.GetUtcNow() + (_last == SchedulerAuthentication.Unknown ? UnknownFor : KnownFor);
            return _last;
        }
        finally
        {
            _gate.Release();
        }
    }

    async Task<SchedulerAuthentication> AskAsync(CancellationToken ct)
    {
        try
        {
            using var http = factory.CreateClient(HttpClientName);
            using var response = await http.GetAsync("api/v1", ct);
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden) return SchedulerAuthentication.On;
            if (!response.IsSuccessStatusCode) return SchedulerAuthentication.Unknown;
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            return doc.RootElement.TryGetProperty("authenticationEnabled", out var enabled) && enabled.ValueKind == JsonValueKind.False
                ? SchedulerAuthentication.Off
                : SchedulerAuthentication.On;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
        {
            logger.LogWarning("Cannot ask the scheduler whether authentication is on: {Error}", e.Message);
            return SchedulerAuthentication.Unknown;
        }
    }
}
