using System.Net;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;

namespace DurableTask.Dashboard.Auth;

/// <summary>The sign-in and sign-out pages: plain HTML forms, so they work before any script or circuit runs.</summary>
static class SignInPage
{
    static string E(string? value) => WebUtility.HtmlEncode(value ?? "");

    static string Head(string title) => $"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8" /><meta name="viewport" content="width=device-width, initial-scale=1.0" />
        <base href="/" /><link rel="stylesheet" href="app.css" /><title>{E(title)}</title></head>
        <body><header class="topbar"><a class="brand" href="">Durable Task Scheduler</a></header><main class="content signin">
        """;

    const string Tail = "</main></body></html>";

    static string Token(AntiforgeryTokenSet tokens) =>
        $"""<input type="hidden" name="{E(tokens.FormFieldName)}" value="{E(tokens.RequestToken)}" />""";

    public static string Render(SignInConfiguration config, AntiforgeryTokenSet tokens, string returnUrl, string? error,
        SchedulerAuthentication scheduler, string? signedInAs)
    {
        var html = new StringBuilder(Head("Sign in"));
        html.Append("<h1>Sign in</h1>");
        if (scheduler == SchedulerAuthentication.Off)
        {
            html.Append("""<p class="notice" data-testid="signin-not-needed">The scheduler has authentication off: no sign-in is needed. <a href="">Open the dashboard</a>.</p>""");
        }

        if (signedInAs is not null)
            html.Append($"""<p class="muted" data-testid="signed-in-as">Signed in as <strong>{E(signedInAs)}</strong>. Signing in again replaces that sign-in.</p>""");
        if (error is not null)
            html.Append($"""<p class="error" role="alert" data-testid="signin-error">{E(error)}</p>""");

        if (config.Modes.HasFlag(SignInModes.Oidc))
        {
            html.Append($"""<p><a class="btn btn-primary" data-testid="signin-oidc" href="{E(DashboardAuthentication.SignInPath + "/oidc?" + DashboardAuthentication.ReturnUrlParameter + "=" + Uri.EscapeDataString(returnUrl))}">{E(config.OidcDisplayName)}</a></p>""");
        }

        if (config.Modes.HasFlag(SignInModes.ApiKey))
        {
            html.Append($"""
                <form class="form" method="post" action="{E(DashboardAuthentication.SignInPath)}" data-testid="signin-form">
                {Token(tokens)}
                <input type="hidden" name="returnUrl" value="{E(returnUrl)}" />
                <label class="block">API key <input type="password" name="apiKey" autocomplete="off" required data-testid="signin-key" /></label>
                <p class="muted">One of the scheduler's API keys. The dashboard keeps it in an encrypted, HttpOnly session cookie and
                sends it with every call to the scheduler, which decides what you may see and do.</p>
                <button type="submit" class="btn btn-primary" data-testid="signin-submit">Sign in</button>
                </form>
                """);
        }

        return html.Append(Tail).ToString();
    }

    public static string RenderSignOut(AntiforgeryTokenSet tokens, string? signedInAs)
    {
        var html = new StringBuilder(Head("Sign out"));
        html.Append("<h1>Sign out</h1>");
        html.Append(signedInAs is null
            ? "<p class=\"muted\">You are not signed in.</p>"
            : $"<p>Signed in as <strong>{E(signedInAs)}</strong>.</p>");
        html.Append($"""
            <form method="post" action="{E(DashboardAuthentication.SignOutPath)}" data-testid="signout-form">
            {Token(tokens)}
            <input type="hidden" name="confirm" value="yes" />
            <button type="submit" class="btn btn-primary" data-testid="signout-submit">Sign out</button>
            </form>
            """);
        return html.Append(Tail).ToString();
    }
}
