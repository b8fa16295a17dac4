using System.Text.RegularExpressions;
using Xunit;

namespace DurableTask.Scheduler.Tests;

/// <summary>
/// The folders of the scheduler form layers: no two of them refer to each other, directly or through others. Each
/// folder is a namespace (<c>Scheduler/Protocol/Wire</c> is <c>DurableTask.Scheduler.Protocol.Wire</c>), and a folder
/// refers to another through a <c>using DurableTask.Scheduler.X</c> directive, a name qualified with the other's
/// namespace (<c>DurableTask.Scheduler.X.Type</c>, or <c>X.Type</c> as code inside the scheduler may write it), or,
/// from a nested namespace, a type of the namespaces around it, which it sees without naming them. A namespace may
/// refer to those nested in it (<c>Storage</c> picks one of <c>Storage.Redis</c>, <c>Storage.Sqlite</c>,
/// <c>Storage.InMemory</c>), so a nested folder can sit below its parent: <c>Protocol.Wire</c>, the work items as
/// they are encoded, is used by the dispatch and the task hubs, which the gRPC service in <c>Protocol</c> sits on.
/// </summary>
public sealed class ArchitectureTests
{
    const string Root = "DurableTask.Scheduler";

    /// <summary>
    /// Pairs of folders that still refer to each other. Each is a known cycle to be taken apart, not a pattern to
    /// follow: nothing may be added here. Their references are left out of the search for longer cycles as well.
    /// </summary>
    static readonly (string, string)[] KnownCycles = [];

    static readonly Regex Namespace = new(@"^\s*namespace\s+([\w.]+)", RegexOptions.Multiline);
    static readonly Regex Using = new(@"^\s*(?:global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?(?:global::)?([\w.]+)\s*;", RegexOptions.Multiline);
    static readonly Regex Qualified = new(@"(?<![\w.])(?:global::)?([A-Z]\w*(?:\s*\.\s*[A-Z]\w*)+)");
    static readonly Regex TypeDeclaration = new(
        @"\b(?:class|struct|interface|enum|record(?:\s+(?:class|struct))?|delegate\s+[\w<>\[\]?,\s]+?)\s+([A-Z]\w*)\s*[<({:;\[]|\b(?:class|struct|interface|enum|record)\s+([A-Z]\w*)\s*$",
        RegexOptions.Multiline);

    sealed record SourceFile(string Path, string Unit, string Code);

    [Fact]
    public void Each_folder_is_its_namespace()
    {
        var scheduler = SchedulerFolder();
        var wrong = new List<string>();
        foreach (var path in SourcePaths(scheduler))
        {
            var match = Namespace.Match(CodeOnly(File.ReadAllText(path)));
            if (!match.Success) continue; // Program.cs: top-level statements
            string folder = Path.GetRelativePath(scheduler, Path.GetDirectoryName(path)!);
            string expected = folder == "." ? Root : $"{Root}.{folder.Replace(Path.DirectorySeparatorChar, '.')}";
            if (match.Groups[1].Value != expected) wrong.Add($"{Path.GetRelativePath(scheduler, path)}: {match.Groups[1].Value}, expected {expected}");
        }

        Assert.True(wrong.Count == 0, "Files whose namespace is not their folder's:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void No_two_folders_refer_to_each_other()
    {
        var references = References(Load(SchedulerFolder()));
        var known = KnownCycles.SelectMany(c => new[] { (c.Item1, c.Item2), (c.Item2, c.Item1) }).ToHashSet();

        foreach (var (from, to) in known)
            Assert.True(references.ContainsKey((from, to)), $"{from} no longer refers to {to}: take the pair off KnownCycles.");

        var graph = references.Keys.Where(edge => !known.Contains(edge)).ToList();
        var problems = new List<string>();
        foreach (var (from, to) in graph.Where(e => string.CompareOrdinal(e.Item1, e.Item2) < 0 && graph.Contains((e.Item2, e.Item1))))
        {
            problems.Add($"{from} <-> {to}: {Describe(references[(from, to)])} / {Describe(references[(to, from)])}");
        }

        // Longer cycles (A -> B -> C -> A) are layers referring to each other as well.
        if (problems.Count == 0 && FindCycle(graph) is { } cycle)
        {
            problems.Add(string.Join(" -> ", cycle) + ": " + string.Join(" / ",
                cycle.Zip(cycle.Skip(1)).Select(e => $"{e.First} -> {e.Second} in {Describe(references[e])}")));
        }

        Assert.True(problems.Count == 0, "Folders of the scheduler that refer to each other:\n" + string.Join("\n", problems));
    }

    static string Describe(List<string> places) =>
        string.Join(", ", places.Distinct().Take(3)) + (places.Distinct().Count() > 3 ? ", ..." : "");

    /// <summary>A cycle of the graph as its units, the first repeated at the end; null when there is none.</summary>
    static List<string>? FindCycle(List<(string From, string To)> edges)
    {
        var next = edges.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).Distinct().Order(StringComparer.Ordinal).ToList());
        var state = new Dictionary<string, int>(); // 1 on the path, 2 done
        var path = new List<string>();

        List<string>? Visit(string unit)
        {
            state[unit] = 1;
            path.Add(unit);
            foreach (var to in next.GetValueOrDefault(unit) ?? [])
            {
                if (state.GetValueOrDefault(to) == 1) return [.. path[path.IndexOf(to)..], to];
                if (state.GetValueOrDefault(to) == 0 && Visit(to) is { } found) return found;
            }

            path.RemoveAt(path.Count - 1);
            state[unit] = 2;
            return null;
        }

        foreach (var unit in next.Keys.Order(StringComparer.Ordinal))
        {
            if (state.GetValueOrDefault(unit) == 0 && Visit(unit) is { } cycle) return cycle;
        }

        return null;
    }

    /// <summary>Who refers to whom: (from, to) and the places (file: reference).</summary>
    static Dictionary<(string, string), List<string>> References(List<SourceFile> files)
    {
        var units = files.Select(f => f.Unit).Where(u => u.Length > 0).ToHashSet();
        var types = files.Where(f => f.Unit.Length > 0)
            .SelectMany(f => TypeDeclaration.Matches(f.Code).Select(m => (f.Unit, Type: m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value)))
            .ToHashSet();
        var references = new Dictionary<(string, string), List<string>>();

        void Add(SourceFile file, string? to, string what)
        {
            // A namespace may use those nested in it; the nested ones are layers of their own otherwise.
            if (to is null || to == file.Unit || file.Unit.Length == 0 || to.StartsWith(file.Unit + ".", StringComparison.Ordinal)) return;
            if (!references.TryGetValue((file.Unit, to), out var places)) references[(file.Unit, to)] = places = [];
            places.Add($"{Path.GetFileName(file.Path)}: {what}");
        }

        // The longest declared namespace that a name starts with (generated ones such as Storage.Records are their folder's).
        string? UnitOf(string name)
        {
            for (string candidate = name; ; candidate = candidate[..candidate.LastIndexOf('.')])
            {
                if (units.Contains(candidate)) return candidate;
                if (!candidate.Contains('.')) return null;
            }
        }

        foreach (var file in files)
        {
            foreach (Match match in Using.Matches(file.Code))
            {
                string name = match.Groups[1].Value;
                if (name.StartsWith(Root + ".", StringComparison.Ordinal)) Add(file, UnitOf(name[(Root.Length + 1)..]), $"using {name}");
            }

            foreach (Match match in Qualified.Matches(file.Code))
            {
                string name = Regex.Replace(match.Groups[1].Value, @"\s+", "");
                if (name.StartsWith(Root + ".", StringComparison.Ordinal))
                {
                    // A namespace alone is a using directive (counted above) or the file's own declaration.
                    string? unit = UnitOf(name[(Root.Length + 1)..]);
                    if (unit != name[(Root.Length + 1)..]) Add(file, unit, name);
                    continue;
                }

                // X.Type or X.Y.Type: the longest namespace the name starts with, followed by a type declared in it.
                var parts = name.Split('.');
                for (int length = parts.Length - 1; length >= 1; length--)
                {
                    string unit = string.Join('.', parts[..length]);
                    if (units.Contains(unit) && types.Contains((unit, parts[length])))
                    {
                        Add(file, unit, string.Join('.', parts[..(length + 1)]));
                        break;
                    }
                }
            }

            // Code in a nested namespace sees the types of the namespaces around it without naming them.
            foreach (var (outer, type) in types)
            {
                if (file.Unit.StartsWith(outer + ".", StringComparison.Ordinal) && !types.Contains((file.Unit, type))
                    && Regex.IsMatch(file.Code, $@"(?<![\w.]){type}\b"))
                    Add(file, outer, type);
            }
        }

        return references;
    }

    static List<SourceFile> Load(string scheduler) =>
        SourcePaths(scheduler).Select(path =>
        {
            string code = CodeOnly(File.ReadAllText(path));
            var match = Namespace.Match(code);
            string unit = !match.Success || match.Groups[1].Value == Root ? "" : match.Groups[1].Value[(Root.Length + 1)..];
            return new SourceFile(path, unit, code);
        }).ToList();

    /// <summary>The source without its comments and the contents of its string and character literals.</summary>
    static string CodeOnly(string source)
    {
        var code = new System.Text.StringBuilder(source.Length);
        for (int i = 0; i < source.Length;)
        {
            char c = source[i];
            char next = i + 1 < source.Length ? source[i + 1] : '\0';
            if (c == '/' && next == '/')
            {
                while (i < source.Length && source[i] != '\n') i++;
            }
            else if (c == '/' && next == '*')
            {
                int end = source.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 2;
            }
            else if (c == '"' && source.AsSpan(i).StartsWith("\"\"\""))
            {
                int end = source.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 3;
                code.Append("\"\"");
            }
            else if (c == '"' || c == '\'')
            {
                bool verbatim = i > 0 && (source[i - 1] == '@' || (source[i - 1] == '$' && i > 1 && source[i - 2] == '@'));
                // A regular literal ends with its line at the latest, so one the scan misreads costs no more.
                for (i++; i < source.Length && source[i] != c && (verbatim || source[i] != '\n'); i++)
                {
                    if (source[i] == '\\' && !verbatim) i++;
                    else if (verbatim && source[i] == '"' && i + 1 < source.Length && source[i + 1] == '"') i++;
                }

                i++;
                code.Append(c).Append(c);
            }
            else
            {
                code.Append(c);
                i++;
            }
        }

        return code.ToString();
    }

    static IEnumerable<string> SourcePaths(string scheduler) =>
        Directory.EnumerateFiles(scheduler, "*.cs", SearchOption.AllDirectories)
            .Where(p => !Path.GetRelativePath(scheduler, p).Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
            .Order(StringComparer.Ordinal);

    /// <summary>The scheduler's source folder: <c>Scheduler/</c> beside <c>Aspire.sln</c>, found from the test's output folder up.</summary>
    static string SchedulerFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Aspire.sln"))) return Path.Combine(dir.FullName, "Scheduler");
        }

        throw new InvalidOperationException($"No Aspire.sln above {AppContext.BaseDirectory}.");
    }
}
