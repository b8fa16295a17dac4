using System.Text.RegularExpressions;
using YamlDotNet.Serialization;

namespace DurableTask.AppHost.Tests;

/// <summary>
/// The Azure deployment: infra/*.bicep compile cleanly, and the container app templates azd renders at deploy time
/// (AppHost/infra/&lt;resource&gt;.tmpl.yaml) match the manifest and use only values the Bicep outputs provide.
/// </summary>
public sealed partial class InfraTests(ManifestFixture manifest) : IClassFixture<ManifestFixture>
{
    static readonly string TemplatesFolder = Repository.PathOf("AppHost", "infra");

    /// <summary>Values azd itself puts in the environment, besides the Bicep outputs.</summary>
    static readonly string[] AzdValues = ["AZURE_LOCATION", "AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"];

    [Theory]
    [InlineData("main.bicep")]
    [InlineData("resources.bicep")]
    public async Task BicepCompilesWithoutErrorsOrWarnings(string file)
    {
        var bicep = BicepCompiler();
        var path = Repository.PathOf("infra", file);

        var build = await Repository.RunAsync(bicep, ["build", path, "--stdout"], Repository.Root, TimeSpan.FromMinutes(2));
        var lint = await Repository.RunAsync(bicep, ["lint", path], Repository.Root, TimeSpan.FromMinutes(2));

        Assert.True(build.ExitCode == 0, build.Error);
        Assert.Contains("\"$schema\"", build.Output);
        Assert.True(lint.ExitCode == 0 && lint.Error.Trim().Length == 0, lint.Error);
    }

    [Fact]
    public void EveryDeployedResourceHasAContainerAppTemplateAndNoTemplateIsOrphaned()
    {
        var deployed = manifest.Resources
            .Where(r => (string?)r.Value!["type"] is "project.v0" or "container.v0" or "container.v1" or "dockerfile.v0")
            .Select(r => r.Key)
            .Order();
        var templates = Directory.GetFiles(TemplatesFolder, "*.tmpl.yaml")
            .Select(f => Path.GetFileName(f)[..^".tmpl.yaml".Length])
            .Order();

        Assert.Equal(deployed, templates);
    }

    [Fact]
    public void TemplatesUseOnlyValuesTheBicepOutputsAndParametersProvide()
    {
        var main = File.ReadAllText(Repository.PathOf("infra", "main.bicep"));
        var outputs = OutputPattern().Matches(main).Select(m => m.Groups[1].Value).ToHashSet();
        var parameters = ParamPattern().Matches(main).Select(m => m.Groups[1].Value).ToHashSet();

        foreach (var (name, text) in Templates())
        {
            foreach (Match expression in ExpressionPattern().Matches(text))
            {
                var body = expression.Groups[1].Value.Trim();
                if (EnvPattern().Match(body) is { Success: true } env)
                {
                    var value = env.Groups[1].Value;
                    Assert.True(outputs.Contains(value) || AzdValues.Contains(value), $"{name}: .Env.{value} is not an output of infra/main.bicep");
                }
                else if (ParameterPattern().Match(body) is { Success: true } parameter)
                {
                    Assert.True(parameters.Contains(parameter.Groups[1].Value), $"{name}: parameter '{parameter.Groups[1].Value}' is not a parameter of infra/main.bicep");
                }
                else
                {
                    Assert.True(body is ".Image" || TargetPortPattern().IsMatch(body), $"{name}: unexpected template expression '{{{{ {body} }}}}'");
                }
            }
        }
    }

    [Fact]
    public void EveryTemplateIsAContainerAppNamedAfterItsResourceWithConsistentSecretsAndVolumes()
    {
        foreach (var (name, _) in Templates())
        {
            var app = Render(name);
            var containers = List(app, "properties.template.containers");
            var container = Assert.Single(containers);

            Assert.Equal(name, Text(container, "name"));
            Assert.Equal(name, Text(app, "tags.azd-service-name"));
            Assert.Equal("UserAssigned", Text(app, "identity.type"));
            Assert.NotNull(Text(app, "properties.configuration.ingress.targetPort"));

            var secrets = (TryList(app, "properties.configuration.secrets") ?? []).Select(s => Text(s, "name")).ToHashSet();
            foreach (var env in TryList(container, "env") ?? [])
            {
                if (Find(env, "secretRef") is string secret)
                {
                    Assert.Contains(secret, secrets);
                }
            }

            var volumes = (TryList(app, "properties.template.volumes") ?? []).Select(v => Text(v, "name")).ToHashSet();
            foreach (var mount in TryList(container, "volumeMounts") ?? [])
            {
                Assert.Contains(Text(mount, "volumeName"), volumes);
            }
        }
    }

    [Fact]
    public void SchedulerIngressIsGrpcOverHttp2OnTheManifestsPortsWithOneReplica()
    {
        var app = Render("scheduler");
        var bindings = manifest.Resource("scheduler")["bindings"]!;
        var env = Env(app);

        Assert.Equal("http2", Text(app, "properties.configuration.ingress.transport"));
        Assert.Equal("false", Text(app, "properties.configuration.ingress.external"));
        Assert.Equal(((int)bindings["grpc"]!["targetPort"]!).ToString(), Text(app, "properties.configuration.ingress.targetPort"));
        var extraPort = Assert.Single(List(app, "properties.configuration.ingress.additionalPortMappings"));
        Assert.Equal(((int)bindings["http"]!["targetPort"]!).ToString(), Text(extraPort, "targetPort"));
        Assert.Equal(Text(app, "properties.configuration.ingress.targetPort"), env["Scheduler__GrpcPort"]);
        Assert.Equal(Text(extraPort, "targetPort"), env["Scheduler__HttpPort"]);
        Assert.Equal("*", env["Scheduler__BindAddress"]);
        Assert.Equal("true", env["Scheduler__Authentication__AllowAnonymousOnNetwork"]);
        Assert.Equal("1", Text(app, "properties.template.scale.maxReplicas"));
        Assert.Contains(List(app, "properties.template.containers")[0] is var c ? List(c, "probes") : [],
            probe => Text(probe, "httpGet.path") == "/healthz" && Text(probe, "httpGet.port") == env["Scheduler__HttpPort"]);
    }

    [Fact]
    public void StoreIsInternalTcpOnTheRedisPortWithItsDataOnTheMountedShare()
    {
        var app = Render("store");
        var store = manifest.Resource("store");
        var container = List(app, "properties.template.containers")[0];

        Assert.Equal("tcp", Text(app, "properties.configuration.ingress.transport"));
        Assert.Equal("false", Text(app, "properties.configuration.ingress.external"));
        Assert.Equal(((int)store["bindings"]!["tcp"]!["targetPort"]!).ToString(), Text(app, "properties.configuration.ingress.targetPort"));
        Assert.Equal((string?)store["volumes"]![0]!["target"], Text(Assert.Single(List(container, "volumeMounts")), "mountPath"));
        Assert.Contains("--appendonly yes", string.Join(' ', List(container, "args")));
    }

    [Theory]
    [InlineData("dashboard")]
    [InlineData("samples")]
    public void AppsReachTheSchedulerThroughItsIngressAndItsHttpPort(string name)
    {
        var env = Env(Render(name));
        var schedulerHttpPort = Env(Render("scheduler"))["Scheduler__HttpPort"];

        Assert.StartsWith("https://scheduler.internal.", env["services__scheduler__grpc__0"]);
        Assert.Equal($"http://scheduler:{schedulerHttpPort}", env["services__scheduler__http__0"]);
    }

    static IEnumerable<(string Name, string Text)> Templates() =>
        Directory.GetFiles(TemplatesFolder, "*.tmpl.yaml")
            .Order()
            .Select(f => (Path.GetFileName(f)[..^".tmpl.yaml".Length], File.ReadAllText(f)));

    /// <summary>Renders a template as azd would, with placeholder values, and parses the YAML.</summary>
    static object Render(string name)
    {
        var text = File.ReadAllText(Path.Combine(TemplatesFolder, $"{name}.tmpl.yaml"));
        var rendered = ExpressionPattern().Replace(text, m =>
        {
            var body = m.Groups[1].Value.Trim();
            if (EnvPattern().Match(body) is { Success: true } env)
            {
                return env.Groups[1].Value switch
                {
                    "AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN" => "example.westeurope.azurecontainerapps.io",
                    "DASHBOARD_EXTERNAL" => "false",
                    var other => $"value-of-{other}",
                };
            }

            if (TargetPortPattern().Match(body) is { Success: true } port)
            {
                return port.Groups[1].Value;
            }

            return body == ".Image" ? "registry.example/image:1" : "generated-secret";
        });
        return new DeserializerBuilder().Build().Deserialize<object>(rendered)
               ?? throw new Xunit.Sdk.XunitException($"{name}.tmpl.yaml is empty.");
    }

    static Dictionary<string, string> Env(object app) =>
        List(List(app, "properties.template.containers")[0], "env")
            .Where(e => Find(e, "value") is not null)
            .ToDictionary(e => Text(e, "name")!, e => Text(e, "value")!);

    static object? Find(object node, string path)
    {
        object? current = node;
        foreach (var key in path.Split('.'))
        {
            current = current is Dictionary<object, object> map && map.TryGetValue(key, out var next) ? next : null;
        }

        return current;
    }

    static string? Text(object node, string path) => Find(node, path)?.ToString();

    static List<object>? TryList(object node, string path) => Find(node, path) as List<object>;

    static List<object> List(object node, string path) =>
        TryList(node, path) ?? throw new Xunit.Sdk.XunitException($"'{path}' is not a list.");

    static string BicepCompiler()
    {
        var path = Repository.Metadata("BicepPath").Replace('\\', Path.DirectorySeparatorChar);
        Assert.True(File.Exists(path), $"The Bicep compiler of the Azure.Bicep.CommandLine package is missing at {path}.");
        // NuGet does not keep the executable bit when it extracts a package.
        if (!OperatingSystem.IsWindows() && !File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute))
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }

        return path;
    }

    [GeneratedRegex(@"^output\s+(\w+)\s", RegexOptions.Multiline)]
    private static partial Regex OutputPattern();

    [GeneratedRegex(@"^param\s+(\w+)\s", RegexOptions.Multiline)]
    private static partial Regex ParamPattern();

    [GeneratedRegex(@"\{\{(.*?)\}\}")]
    private static partial Regex ExpressionPattern();

    [GeneratedRegex(@"^\.Env\.(\w+)$")]
    private static partial Regex EnvPattern();

    [GeneratedRegex(@"^(?:securedParameter|parameter)\s+""(\w+)""$")]
    private static partial Regex ParameterPattern();

    [GeneratedRegex(@"^targetPortOrDefault\s+(\d+)$")]
    private static partial Regex TargetPortPattern();
}
