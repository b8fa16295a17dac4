namespace SampleFunctionApp.Api;

static class ResultExtensions
{
    /// <summary>Adds response headers to a result.</summary>
    public static IResult WithHeaders(this IResult inner, params (string Name, string Value)[] headers) => new WithHeadersResult(inner, headers);

    sealed class WithHeadersResult(IResult inner, (string Name, string Value)[] headers) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            foreach (var (name, value) in headers)
            {
                httpContext.Response.Headers[name] = value;
            }

            return inner.ExecuteAsync(httpContext);
        }
    }
}
