using System.Reflection;
using System.Text.RegularExpressions;
using Google.Protobuf.Reflection;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Tests.Protocol;

/// <summary>
/// Keeps every request field of the protocol accounted for. It walks the descriptors of the <c>TaskHubSidecarService</c>
/// the referenced SDK package was built with: every field of every request message, and of the messages inside them
/// (actions inside an <c>OrchestratorResponse</c>, results inside an <c>EntityBatchResult</c>, ...). Each field must be
/// either honoured, with the test that shows it named in <see cref="Honoured"/>, or listed with what the scheduler does
/// instead in the table of <c>docs/protocol-fields.md</c>. A field a new SDK version adds fails this test until it is.
/// </summary>
public sealed partial class ProtocolFieldCoverageTests
{
    /// <summary>
    /// Messages the scheduler keeps as it received them and hands back unchanged (history events, failure details,
    /// trace contexts): every field inside them is honoured by being kept, shown by the test named.
    /// </summary>
    static readonly Dictionary<string, string> KeptAsSent = new()
    {
    };

    /// <summary>Fields the scheduler honours, each with the test (<c>Class.Method</c>) that exercises it.</summary>
    static readonly Dictionary<string, string> Honoured = new()
    {
    };

    [Fact]
    public void Every_request_field_is_honoured_or_documented()
    {
        var documented = DocumentedFields();
        var problems = new List<string>();
        foreach (var (field, path) in RequestFields())
        {
            if (Honoured.ContainsKey(field) || documented.ContainsKey(field)) continue;
            problems.Add($"{field} (reached by {path}) is neither honoured nor documented. Either honour it and add \"{field}\" with the test "
                + $"that exercises it to {nameof(ProtocolFieldCoverageTests)}.{nameof(Honoured)}, or make the scheduler refuse it "
                + "(a clear status naming the field) or otherwise handle it, and add a row for it to the table in docs/protocol-fields.md "
                + "saying what the scheduler does instead.");
        }

        Assert.True(problems.Count == 0, $"{problems.Count} request field(s) of the protocol are not accounted for:\n" + string.Join("\n", problems));
    }

    /// <summary>Every request field, as <c>Message.field</c>, with the path from an RPC that reaches it.</summary>
    static Dictionary<string, string> RequestFields()
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var method in P.TaskHubSidecarService.Descriptor.Methods) Walk(method.InputType, method.Name + "(" + method.InputType.Name + ")", fields, seen);
        return fields;
    }

    static void Walk(MessageDescriptor message, string path, Dictionary<string, string> fields, HashSet<string> seen)
    {
        if (IsWellKnown(message) || KeptAsSent.ContainsKey(message.Name) || !seen.Add(message.FullName)) return;
        foreach (var field in message.Fields.InDeclarationOrder())
        {
            string name = message.Name + "." + field.Name;
            fields.TryAdd(name, path);
            if (field.FieldType == FieldType.Message && !field.IsMap) Walk(field.MessageType, path + "." + field.Name, fields, seen);
        }
    }

    static bool IsWellKnown(MessageDescriptor message) => message.File.Package == "google.protobuf";

    [GeneratedRegex(@"^\|\s*`(?<field>[A-Za-z0-9_]+\.[A-Za-z0-9_]+)`\s*\|(?<rest>.*)\|\s*$")]
    private static partial Regex TableRow();

    /// <summary>The rows of the field table in docs/protocol-fields.md: field, then what the scheduler does and why.</summary>
    static Dictionary<string, string> DocumentedFields()
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(DocPath()))
        {
            var match = TableRow().Match(line);
            if (match.Success) rows[match.Groups["field"].Value] = match.Groups["rest"].Value;
        }

        return rows;
    }

    static string DocPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "docs", "protocol-fields.md");
            if (File.Exists(candidate)) return candidate;
        }

        throw new FileNotFoundException("docs/protocol-fields.md was not found above " + AppContext.BaseDirectory);
    }

    static MethodInfo? TestMethod(string name)
    {
        int dot = name.LastIndexOf('.');
        if (dot < 0) return null;
        var type = typeof(ProtocolFieldCoverageTests).Assembly.GetTypes().SingleOrDefault(t => t.Name == name[..dot]);
        var method = type?.GetMethod(name[(dot + 1)..], BindingFlags.Public | BindingFlags.Instance);
        return method?.GetCustomAttributes<FactAttribute>().Any() == true ? method : null;
    }
}
