using DurableTask.Dashboard.Api;
using DurableTask.Dashboard.Auth;
using DurableTask.Dashboard.Components;
using Microsoft.Extensions.Http.Resilience;

namespace DurableTask.Dashboard;

/// <summary>
/// Builds the dashboard: a Blazor app (interactive server rendering) that reads and manages task hubs through the
/// scheduler's JSON API only. The API address comes from <c>Scheduler:ApiAddress</c>, else from Aspire service discovery
/// (<c>services:scheduler:http:0</c>), else <c>http://localhost:8081</c>. When the scheduler has authentication on, people
/// sign in (<c>Dashboard:Authentication</c>) and every API call carries their own credential.
/// </summary>
public static class DashboardApp
{
    public const string DefaultApiAddress = "http://localhost:8081";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            // Keeps static assets and their manifest found when another program (a test) hosts the dashboard.
            ApplicationName = typeof(DashboardApp).Assembly.GetName().Name,
        });
        // Serves the framework script and the styles from the build output when the app runs unpublished (dotnet run, tests);
        // a published app has no runtime manifest and serves them from its wwwroot.
        builder.WebHost.UseStaticWebAssets();
        builder.AddServiceDefaults();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();

        var apiAddress = ApiAddress(builder.Configuration);
        builder.AddDashboardAuthentication(apiAddress);
        builder.Services.AddHttpClient<SchedulerClient>(c => c.BaseAddress = apiAddress);
        // Management actions are not idempotent: never retry them.
        builder.Services.Configure<HttpStandardResilienceOptions>($"{nameof(SchedulerClient)}-standard",
            o => o.Retry.DisableForUnsafeHttpMethods());
        configure?.Invoke(builder);

        var app = builder.Build();
        if (!app.Environment.IsDevelopment()) app.UseExceptionHandler("/error", createScopeForErrors: true);
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.MapStaticAssets().AllowAnonymous();
        app.MapDefaultEndpoints();
        app.MapDashboardSignIn();
        app.MapDownloads();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        return app;
    }

    public static Uri ApiAddress(IConfiguration configuration)
    {
        var address = configuration["Scheduler:ApiAddress"];
        if (string.IsNullOrWhiteSpace(address)) address = configuration["services:scheduler:http:0"];
        if (string.IsNullOrWhiteSpace(address)) address = DefaultApiAddress;
        if (!address.EndsWith('/')) address += "/";
        return new Uri(address);
    }

    /// <summary>Full payloads, streamed from the scheduler API so the browser never needs to reach the scheduler itself.</summary>
    static void MapDownloads(this WebApplication app)
    {
        app.MapGet("/download/{hub}/payload", async (string hub, string id, string? kind, int? eventIndex, SchedulerClient client, SchedulerCredential credential, HttpContext context) =>
        {
            credential.Use(context.User);
            try
            {
                using var response = await client.DownloadAsync(hub, id, kind, eventIndex, context.RequestAborted);
                var name = response.Content.Headers.ContentDisposition?.FileNameStar ?? response.Content.Headers.ContentDisposition?.FileName ?? "payload.json";
                context.Response.ContentType = "application/json";
                context.Response.Headers.ContentDisposition = $"attachment; filename=\"{name.Trim('"')}\"";
                await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
                return Results.Empty;
            }
            catch (SchedulerApiException e)
            {
                return Results.Problem(detail: e.Detail, statusCode: e.Status is { } s ? (int)s : StatusCodes.Status502BadGateway, title: e.Title);
            }
        });
    }
}
