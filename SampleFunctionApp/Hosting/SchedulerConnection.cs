using System.Data.Common;

namespace SampleFunctionApp.Hosting;

/// <summary>Where the scheduler is and which task hub the app uses.</summary>
/// <remarks>
/// The address comes from the first of these that is set:
/// <list type="number">
/// <item><c>services:scheduler:grpc:0</c>: written by the AppHost's <c>WithReference(scheduler)</c> for the scheduler's
/// <c>grpc</c> endpoint (environment <c>services__scheduler__grpc__0</c>);</item>
/// <item><c>ConnectionStrings:scheduler</c>: a plain address, or the Durable Task Scheduler form
/// <c>Endpoint=http://localhost:8080;TaskHub=default;Authentication=None</c>;</item>
/// <item><c>Scheduler:Address</c>;</item>
/// <item><c>http://localhost:8080</c>, the scheduler's default gRPC port.</item>
/// </list>
/// The task hub is <c>Scheduler:TaskHub</c>, else the connection string's <c>TaskHub</c>, else <c>default</c>.
/// A scheduler with authentication on takes <c>Scheduler:ApiKey</c>, sent as <c>Authorization: Bearer</c> on every call
/// (use an <c>https://</c> address so it travels over TLS).
/// <code>
/// "Scheduler": { "Address": "https://scheduler.example:8080", "TaskHub": "default", "ApiKey": "..." }
/// </code>
/// </remarks>
public sealed record SchedulerConnection(Uri Address, string TaskHub, string? ApiKey = null)
{
    public const string DefaultAddress = "http://localhost:8080";
    public const string DefaultTaskHub = "default";

    public static SchedulerConnection FromConfiguration(IConfiguration configuration)
    {
        string? address = configuration["services:scheduler:grpc:0"];
        string? hubFromConnectionString = null;

        if (string.IsNullOrWhiteSpace(address))
        {
            var connectionString = configuration.GetConnectionString("scheduler");
            if (!string.IsNullOrWhiteSpace(connectionString))
            {
                (address, hubFromConnectionString) = ParseConnectionString(connectionString);
            }
        }

        if (string.IsNullOrWhiteSpace(address))
        {
            address = configuration["Scheduler:Address"];
        }

        if (string.IsNullOrWhiteSpace(address))
        {
            address = DefaultAddress;
        }

        var taskHub = configuration["Scheduler:TaskHub"];
        if (string.IsNullOrWhiteSpace(taskHub))
        {
            taskHub = string.IsNullOrWhiteSpace(hubFromConnectionString) ? DefaultTaskHub : hubFromConnectionString;
        }

        if (!Uri.TryCreate(address.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new InvalidOperationException(
                $"The scheduler address '{address}' is not an absolute http:// or https:// URI (e.g. {DefaultAddress}).");
        }

        var apiKey = configuration["Scheduler:ApiKey"];
        return new SchedulerConnection(uri, taskHub.Trim(), string.IsNullOrWhiteSpace(apiKey) ? null : apiKey.Trim());
    }

    /// <summary>Accepts either a bare address or <c>Endpoint=...;TaskHub=...</c>.</summary>
    static (string? Address, string? TaskHub) ParseConnectionString(string value)
    {
        if (!value.Contains('='))
        {
            return (value, null);
        }

        var parts = new DbConnectionStringBuilder { ConnectionString = value };
        string? Get(string key) => parts.TryGetValue(key, out var v) ? v?.ToString() : null;
        return (Get("Endpoint"), Get("TaskHub"));
    }
}
