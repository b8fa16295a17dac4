using DurableTask.Scheduler.Hosting;
using DurableTask.Scheduler.Security;
using Microsoft.Extensions.DependencyInjection;

namespace DurableTask.Scheduler.Tests.Security;

/// <summary>The access policy itself: every gRPC method has exactly one permission, roles grant what the managed service's roles grant,
/// and unsafe or broken settings stop the scheduler at start with a clear message.</summary>
public sealed class PolicyTests
{
    [Fact]
    public void Every_sidecar_method_has_exactly_one_permission()
    {
        var methods = RawMethods.Names.ToHashSet();
        var missing = methods.Where(m => !MethodPermissions.ByMethod.ContainsKey(m)).ToList();
        var stale = MethodPermissions.ByMethod.Keys.Where(m => !methods.Contains(m)).ToList();
        Assert.True(missing.Count == 0, $"Methods of TaskHubSidecarService without a permission in MethodPermissions: {string.Join(", ", missing)}");
        Assert.True(stale.Count == 0, $"MethodPermissions names methods the service does not have: {string.Join(", ", stale)}");
        Assert.Equal(29, methods.Count);
        Assert.All(MethodPermissions.Audited, m => Assert.Contains(m, methods));
    }

    [Fact]
    public void Method_names_are_read_from_the_grpc_path()
    {
        Assert.Equal("StartInstance", MethodPermissions.MethodName($"/{MethodPermissions.ServiceName}/StartInstance"));
        Assert.Null(MethodPermissions.MethodName("/grpc.health.v1.Health/Check"));
        Assert.Null(MethodPermissions.MethodName("/x"));
    }

    [Theory]
    [InlineData(DurableTaskRole.Reader, Permission.Read, true)]
    [InlineData(DurableTaskRole.Reader, Permission.ClientWrite, false)]
    [InlineData(DurableTaskRole.Reader, Permission.WorkerProcess, false)]
    [InlineData(DurableTaskRole.Reader, Permission.Admin, false)]
    [InlineData(DurableTaskRole.Worker, Permission.Read, true)]
    [InlineData(DurableTaskRole.Worker, Permission.ClientWrite, true)]
    [InlineData(DurableTaskRole.Worker, Permission.WorkerProcess, true)]
    [InlineData(DurableTaskRole.Worker, Permission.Admin, false)]
    [InlineData(DurableTaskRole.Contributor, Permission.Read, true)]
    [InlineData(DurableTaskRole.Contributor, Permission.ClientWrite, true)]
    [InlineData(DurableTaskRole.Contributor, Permission.WorkerProcess, true)]
    [InlineData(DurableTaskRole.Contributor, Permission.Admin, true)]
    public void Roles_grant_the_managed_service_permissions(DurableTaskRole role, Permission permission, bool granted) =>
        Assert.Equal(granted, Roles.Grants(role, permission));

    [Theory]
    [InlineData("contributor", DurableTaskRole.Contributor, "*")]
    [InlineData("Durable Task Data Contributor", DurableTaskRole.Contributor, "*")]
    [InlineData("WORKER", DurableTaskRole.Worker, "*")]
    [InlineData("Durable Task Worker:orders", DurableTaskRole.Worker, "orders")]
    [InlineData("reader:a", DurableTaskRole.Reader, "a")]
    [InlineData("Durable Task Data Reader", DurableTaskRole.Reader, "*")]
    public void Role_values_parse_with_optional_hub_scope(string value, DurableTaskRole role, string scope)
    {
        Assert.True(Roles.TryParseAssignment(value, out var assignment));
        Assert.Equal(new RoleAssignment(role, scope), assignment);
    }

    [Theory]
    [InlineData("")]
    [InlineData("admin")]
    [InlineData("worker:")]
    [InlineData("Task.Read")]
    public void Other_role_values_grant_nothing(string value) => Assert.False(Roles.TryParseAssignment(value, out _));

    [Fact]
    public void Api_key_hashes_verify_and_reject()
    {
        var sha = ApiKeyHash.Parse(ApiKeyHash.Create("secret-1"))!;
        var pbkdf2 = ApiKeyHash.Parse(ApiKeyHash.Create("secret-1", iterations: 10_000))!;
        byte[] Digest(string k) => System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(k));
        Assert.True(sha.Matches("secret-1", Digest("secret-1")));
        Assert.False(sha.Matches("secret-2", Digest("secret-2")));
        Assert.True(pbkdf2.Matches("secret-1", Digest("secret-1")));
        Assert.False(pbkdf2.Matches("secret-2", Digest("secret-2")));
        Assert.NotNull(ApiKeyHash.Parse(Convert.ToHexString(Digest("x"))));
        Assert.Null(ApiKeyHash.Parse("sha256:abc"));
        Assert.Null(ApiKeyHash.Parse("md5:0123"));
        Assert.Null(ApiKeyHash.Parse("pbkdf2-sha256:5:AAAA:AAAA"));
    }

    static InvalidOperationException Refused(params string[] args) =>
        Assert.Throws<InvalidOperationException>(() => SchedulerHost.Build(["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0", .. args]));

    [Theory]
    [InlineData("*")]
    [InlineData("0.0.0.0")]
    [InlineData("10.1.2.3")]
    public void Anonymous_access_on_the_network_is_refused_at_start(string bindAddress)
    {
        var error = Refused($"--Scheduler:BindAddress={bindAddress}");
        Assert.Contains("Scheduler:Authentication:AllowAnonymousOnNetwork=true", error.Message);
        Assert.Contains(bindAddress, error.Message);
        error = Refused($"--Scheduler:BindAddress={bindAddress}", "--Scheduler:Authentication:Mode=None");
        Assert.Contains("authentication is off", error.Message);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public void Anonymous_access_on_loopback_is_the_default(string bindAddress)
    {
        Assert.True(SchedulerSecurity.IsLoopback(bindAddress));
        using var app = (IDisposable)SchedulerHost.Build(["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0", $"--Scheduler:BindAddress={bindAddress}"]);
    }

    [Fact]
    public async Task Anonymous_access_on_the_network_can_be_allowed_explicitly()
    {
        await using var app = SchedulerHost.Build(["--Scheduler:GrpcPort=0", "--Scheduler:HttpPort=0", "--Scheduler:BindAddress=*",
            "--Scheduler:Authentication:AllowAnonymousOnNetwork=true"]);
        Assert.False(app.Services.GetRequiredService<SchedulerSecurity>().Enabled);
    }

    [Fact]
    public void Broken_security_settings_are_refused_at_start()
    {
        Assert.Contains("Mode 'Kerberos'", Refused("--Scheduler:Authentication:Mode=Kerberos").Message);
        Assert.Contains("Audiences", Refused("--Scheduler:Authentication:Mode=Jwt", "--Scheduler:Authentication:Jwt:Authority=https://login.example").Message);
        Assert.Contains("Authority", Refused("--Scheduler:Authentication:Mode=Jwt", "--Scheduler:Authentication:Jwt:Audience=x").Message);
        Assert.Contains("Issuers", Refused("--Scheduler:Authentication:Mode=Jwt", "--Scheduler:Authentication:Jwt:Audience=x",
            $"--Scheduler:Authentication:Jwt:SymmetricKeys:0={Convert.ToBase64String(new byte[32])}").Message);
        Assert.Contains("at least 32 bytes", Refused("--Scheduler:Authentication:Mode=Jwt", "--Scheduler:Authentication:Jwt:Audience=x",
            "--Scheduler:Authentication:Jwt:Issuer=i", $"--Scheduler:Authentication:Jwt:SymmetricKeys:0={Convert.ToBase64String(new byte[16])}").Message);
        Assert.Contains("ApiKeys is empty", Refused("--Scheduler:Authentication:Mode=ApiKey").Message);
        Assert.Contains("Hash", Refused("--Scheduler:Authentication:Mode=ApiKey", "--Scheduler:Authentication:ApiKeys:0:Name=k",
            "--Scheduler:Authentication:ApiKeys:0:Hash=plaintext-key").Message);
        Assert.Contains("role 'owner'", Refused("--Scheduler:Authentication:Mode=ApiKey", "--Scheduler:Authentication:ApiKeys:0:Name=k",
            $"--Scheduler:Authentication:ApiKeys:0:Hash={ApiKeyHash.Create("k")}", "--Scheduler:Authentication:ApiKeys:0:Roles:0=owner").Message);
        Assert.Contains("scope 'a b'", Refused("--Scheduler:Authorization:RoleAssignments:0:Principal=p",
            "--Scheduler:Authorization:RoleAssignments:0:Role=reader", "--Scheduler:Authorization:RoleAssignments:0:Scope=a b").Message);
        Assert.Contains("does not exist", Refused("--Scheduler:Tls:CertificatePath=/nonexistent/cert.pfx").Message);
        Assert.Contains("MaxStreamsPerConnection", Refused("--Scheduler:Limits:MaxStreamsPerConnection=0").Message);
    }
}
