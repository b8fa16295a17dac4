using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;
using P = Microsoft.DurableTask.Protobuf;

namespace DurableTask.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser, against the real scheduler, with instances run by the real SDK: filter the list,
/// open an instance with its timeline and history, drill into a sub-orchestration, terminate one instance and purge a
/// filtered set, then check the results through the SDK. Saves the screenshots the documentation shows.
/// </summary>
[Collection(DashboardCollection.Name)]
public sealed class BrowserTests(DashboardFixture fx, BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    static readonly string Screenshots = Path.Combine(BrowserFixture.RepoRoot(), "docs", "screenshots");

    async Task<IPage> OpenAsync(string path)
    {
        var context = await browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = fx.DashboardAddress,
            ViewportSize = new ViewportSize { Width = 1440, Height = 900 },
        });
        var page = await context.NewPageAsync();
        await page.GotoAsync(path);
        return page;
    }

    static Task Shot(IPage page, string name, bool fullPage = false)
    {
        Directory.CreateDirectory(Screenshots);
        return page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name), FullPage = fullPage });
    }

    /// <summary>Raises "approve" through the dialog the button opens: a payload that is not JSON is refused there, then a good one goes.</summary>
    static async Task RaiseApprovalAsync(IPage page, string button, string by)
    {
        await page.GetByTestId(button).ClickAsync();
        await page.GetByTestId("event-name").FillAsync("approve");
        await page.GetByTestId("event-payload").FillAsync(by);
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-error")).ToContainTextAsync("not valid JSON");
        await page.GetByTestId("event-payload").FillAsync($"\"{by}\"");
        await page.GetByTestId("confirm").ClickAsync();
    }

    [Fact]
    public async Task ManageOrchestrationsInTheBrowser()
    {
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        var tags = new Dictionary<string, string> { ["team"] = "payments" };
        for (int i = 1; i <= 2; i++) await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Parent, $"City{i}", new StartOrchestrationOptions($"{p}order-{i}") { Version = "1.4" });
        for (int i = 1; i <= 3; i++) await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Greet, "Tokyo", new StartOrchestrationOptions($"{p}greet-{i}") { Tags = tags, Version = "2.0" });
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Failing, "gearbox", new StartOrchestrationOptions($"{p}payment-fail"));
        for (int i = 1; i <= 2; i++) await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions($"{p}approval-{i}"));
        foreach (var id in new[] { "order-1", "order-2", "greet-1", "greet-2", "greet-3", "payment-fail" }) await fx.CompleteAsync(p + id);
        for (int i = 1; i <= 2; i++) await fx.StartedAsync($"{p}approval-{i}");
        const int all = 2 + 4 + 3 + 1 + 2; // parents, their children, greetings, the failure, the waiting ones

        // Overview: counts, throughput, backlog, workers, and the banner about authentication.
        var page = await OpenAsync("hubs/default");
        await Expect(page.GetByTestId("auth-banner")).ToContainTextAsync("Authentication is off: anyone who can reach this dashboard can manage orchestrations");
        await Expect(page.GetByTestId("status-counts")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("throughput")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("workers").Locator("tbody tr")).ToHaveCountAsync(1);
        await Shot(page, "overview.png", fullPage: true);

        // 1) Filter the list; filters live in the address, so Back restores the previous list.
        await page.GetByRole(AriaRole.Link, new() { Name = "Orchestrations", Exact = true }).ClickAsync();
        var rows = page.GetByTestId("row");
        await Expect(page.GetByTestId("orchestrations")).ToBeVisibleAsync();
        await page.GetByTestId("filter-prefix").FillAsync(p);
        await page.GetByTestId("filter-apply").ClickAsync();
        // Alone in the hub, the instances fill the list before the filter too: wait for the filtered address first.
        await Expect(page).ToHaveURLAsync(new Regex("prefix=" + Regex.Escape(p)));
        await Expect(rows).ToHaveCountAsync(all);
        await Expect(page.GetByTestId("matching")).ToHaveTextAsync($"{all} matching");
        await Expect(page.Locator($"[data-instance-id='{p}greet-1'] [data-testid=version]")).ToHaveTextAsync("2.0");
        await Shot(page, "orchestrations.png", fullPage: true);

        await page.GetByTestId("chip-Failed").ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.First).ToHaveAttributeAsync("data-instance-id", p + "payment-fail");
        Assert.Contains("status=Failed", page.Url);
        await page.GoBackAsync();
        await Expect(rows).ToHaveCountAsync(all);

        await page.GetByTestId("filter-name").FillAsync("Parent");
        await page.GetByTestId("filter-hide-sub").CheckAsync();
        await page.GetByTestId("filter-apply").ClickAsync();
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("status-chips")).ToContainTextAsync("Completed 2");

        // A shared link shows the same list.
        var shared = await OpenAsync(page.Url);
        await Expect(shared.GetByTestId("row")).ToHaveCountAsync(2);
        await shared.Context.CloseAsync();

        // 2) Open an instance: its timeline and history.
        await page.GetByRole(AriaRole.Link, new() { Name = p + "order-1", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(p + "order-1");
        await Expect(page.GetByTestId("properties").GetByTestId("status")).ToHaveTextAsync("Completed");
        var timeline = page.GetByTestId("timeline-item");
        await Expect(timeline).ToHaveCountAsync(3);
        await Expect(page.Locator("[data-testid=timeline-item][data-kind=SubOrchestration]")).ToHaveCountAsync(2);
        await Expect(page.Locator("[data-testid=timeline-item][data-kind=Activity]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=history-event][data-type=ExecutionStarted]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=history-event][data-type=ExecutionCompleted]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=history-event][data-type=SubOrchestrationInstanceCompleted]")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("payload-output")).ToContainTextAsync("Hello, City1-0!");
        await Shot(page, "instance.png", fullPage: true);

        // 3) Drill into a sub-orchestration and back to its parent.
        await page.GetByTestId("timeline-suborchestration").First.ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(p + "order-1-child-0");
        await Expect(page.Locator("[data-testid=timeline-item][data-kind=Timer]")).ToHaveCountAsync(1);
        await page.GetByTestId("parent-link").ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(p + "order-1");

        // The failed instance shows its failure with the inner-failure chain.
        await page.GotoAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(p + "payment-fail")}");
        await Expect(page.GetByTestId("failure").First).ToContainTextAsync("the activity gave up");
        await Expect(page.Locator(".inner-failure").First).ToContainTextAsync("the gearbox is broken");

        // 4) Terminate one instance with a reason...
        await page.GotoAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(p + "approval-1")}");
        await Expect(page.GetByTestId("properties").GetByTestId("status")).ToHaveTextAsync("Running");
        await page.GetByTestId("action-terminate").ClickAsync();
        await Expect(page.GetByTestId("confirm-dialog")).ToBeVisibleAsync();
        await page.GetByTestId("reason").FillAsync("cancelled by the operator");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Termination requested.");
        await Expect(page.GetByTestId("confirm-dialog")).ToHaveCountAsync(0);

        // ...and purge a filtered set (the three greetings), confirming first.
        await page.GotoAsync($"hubs/default/orchestrations?prefix={Uri.EscapeDataString(p)}&name=Greet");
        await Expect(rows).ToHaveCountAsync(3);
        await page.GetByTestId("bulk-purge").ClickAsync();
        await Expect(page.GetByTestId("bulk-target")).ToContainTextAsync("all 3 instances matching");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Purged 3 instances.");
        await Expect(page.GetByTestId("empty")).ToBeVisibleAsync();

        // An action the scheduler refuses shows its error in the dialog.
        await page.GotoAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(p + "approval-2")}");
        await page.GetByTestId("action-restart").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-error")).ToContainTextAsync("409");
        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel" }).ClickAsync();

        // 5) The SDK sees the results.
        var terminated = await fx.CompleteAsync(p + "approval-1");
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, terminated.RuntimeStatus);
        Assert.Equal("\"cancelled by the operator\"", terminated.SerializedOutput);
        for (int i = 1; i <= 3; i++) Assert.Null(await fx.Client.GetInstanceAsync($"{p}greet-{i}"));
        Assert.Equal(OrchestrationRuntimeStatus.Running, (await fx.Client.GetInstanceAsync(p + "approval-2"))!.RuntimeStatus);
        Assert.NotNull(await fx.Client.GetInstanceAsync(p + "order-1"));

        // Workers page.
        await page.GetByRole(AriaRole.Link, new() { Name = "Workers", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("workers").Locator("tbody tr")).ToHaveCountAsync(1);
        await Shot(page, "workers.png");

        await fx.Client.TerminateInstanceAsync(p + "approval-2");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_critical_section_reads_as_entity_calls_locks_and_signals()
    {
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        string alice = $"account@{p}alice", bob = $"account@{p}bob";
        await fx.Client.Entities.SignalEntityAsync(new Microsoft.DurableTask.Entities.EntityInstanceId(nameof(Account), p + "alice"), nameof(Account.Deposit), 100);
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Transfer, $"{p}alice,{p}bob", new StartOrchestrationOptions(p + "transfer"));
        Assert.Equal("70", (await fx.CompleteAsync(p + "transfer")).SerializedOutput);
        var page = await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(p + "transfer")}");

        // The timeline: the critical section with its hold time, the two calls under it, the two signals after it.
        var timeline = page.GetByTestId("timeline-item");
        await Expect(timeline).ToHaveCountAsync(5);
        await Expect(timeline.Nth(0)).ToHaveAttributeAsync("data-kind", "EntityLock");
        await Expect(timeline.Nth(0)).ToContainTextAsync($"critical section {alice} {bob}");
        await Expect(timeline.Nth(0).GetByTestId("timeline-duration")).ToContainTextAsync("held ");
        await Expect(timeline.Nth(1)).ToContainTextAsync($"entity call {alice} Withdraw");
        await Expect(timeline.Nth(2)).ToContainTextAsync($"entity call {bob} Deposit");
        await Expect(page.Locator("[data-testid=timeline-item][data-kind=EntitySignal]")).ToHaveCountAsync(2);

        // The history says what each entity message did; the raw message is one click away.
        var calls = page.Locator("[data-testid=entity-event][data-entity-kind=Call]");
        await Expect(calls).ToHaveCountAsync(2);
        await Expect(calls.First).ToHaveTextAsync($"call {alice} Withdraw(30)");
        await Expect(page.Locator("[data-testid=entity-event][data-entity-kind=Result]").First).ToContainTextAsync($"result of {alice} Withdraw");
        await Expect(page.Locator("[data-testid=entity-event][data-entity-kind=Result]").First.GetByTestId("entity-result")).ToHaveTextAsync("-> 70");
        await Expect(page.Locator("[data-testid=entity-event][data-entity-kind=LockRequest]")).ToHaveTextAsync($"lock {alice} {bob}");
        await Expect(page.Locator("[data-testid=entity-event][data-entity-kind=Unlock]").First.GetByTestId("lock-held")).ToContainTextAsync("held ");
        await Expect(page.Locator("[data-testid=entity-event][data-entity-kind=Signal]").First).ToHaveTextAsync($"signal {alice} Note(\"sent 30\")");
        var raw = page.Locator("[data-type=EventSent]").Filter(new() { HasText = "Withdraw(30)" }).GetByTestId("raw-message");
        await Expect(raw.Locator("code")).Not.ToBeVisibleAsync();
        await raw.Locator("summary").ClickAsync();
        await Expect(raw.Locator("code")).ToContainTextAsync("\"op\":\"Withdraw\"");

        // The flow: lock, two calls, then both signals in one box; an entity links to the entities page.
        var steps = page.GetByTestId("flow-step");
        await Expect(steps).ToHaveCountAsync(4);
        await Expect(steps.Nth(0)).ToContainTextAsync("lock 2 entities");
        await Expect(steps.Nth(1)).ToContainTextAsync("Withdraw");
        await Expect(steps.Nth(1)).ToContainTextAsync("-> 70");
        await Expect(steps.Nth(2)).ToContainTextAsync("Deposit");
        await Expect(steps.Nth(3).GetByTestId("flow-count")).ToHaveTextAsync("×2");
        await Expect(steps.Nth(3).GetByTestId("flow-counts")).ToHaveTextAsync("2 sent");
        await Shot(page, "entity-timeline.png", fullPage: true);
        await steps.Nth(1).GetByTestId("entity-link").ClickAsync();
        await Expect(page.GetByTestId("entity-row")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("entity-state")).ToHaveTextAsync("70");
        await page.Context.CloseAsync();
    }

    /// <summary>The header that addresses the sales hub, which has no SDK worker, for a worker speaking the raw protocol.</summary>
    static readonly Metadata SalesHub = new() { { "taskhub", "sales" } };

    /// <summary>Waits until a worker speaking the raw protocol left the sales hub, before other tests count its workers.</summary>
    Task RawWorkerLeftAsync() => DashboardFixture.Eventually(async () =>
        (await fx.Api.GetFromJsonAsync<System.Text.Json.JsonElement>("api/v1/taskhubs")).EnumerateArray()
            .Single(h => h.GetProperty("name").GetString() == "sales").GetProperty("workerCount").GetInt32() == 0, "the raw worker left");

    [Fact]
    public async Task Entity_messages_in_the_protocols_own_events_read_the_same()
    {
        // A worker speaking the raw protocol uses the protocol's entity events (the .NET SDK uses the older encoding). It
        // runs on the sales hub, which has no SDK worker, and takes only its own orchestration and the account entity.
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-raw";
        string a = $"@account@{id}-a", b = $"@account@{id}-b";
        using var channel = GrpcChannel.ForAddress(fx.GrpcAddress);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var filters = new P.WorkItemFilters();
        filters.Orchestrations.Add(new P.OrchestrationFilter { Name = "RawTransfer" });
        filters.Entities.Add(new P.EntityFilter { Name = "account" });
        using (var stream = client.GetWorkItems(new P.GetWorkItemsRequest { WorkItemFilters = filters }, SalesHub, cancellationToken: cts.Token))
        {
            await client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "RawTransfer" }, SalesHub);
            int episode = 0, batchesAfterEnd = 0;
            while (batchesAfterEnd == 0 && await stream.ResponseStream.MoveNext(cts.Token))
            {
                var item = stream.ResponseStream.Current;
                if (item.EntityRequestV2 is { } batch)
                {
                    var result = new P.EntityBatchResult { CompletionToken = item.CompletionToken, EntityState = "70" };
                    foreach (var _ in batch.OperationRequests) result.Results.Add(new P.OperationResult { Success = new P.OperationResultSuccess { Result = "70" } });
                    await client.CompleteEntityTaskAsync(result, SalesHub);
                    if (episode == 3) batchesAfterEnd++;
                    continue;
                }

                if (item.OrchestratorRequest?.InstanceId != id) continue;
                var response = new P.OrchestratorResponse { InstanceId = id, CompletionToken = item.CompletionToken };
                P.OrchestratorAction Send(int actionId, P.SendEntityMessageAction message) => new() { Id = actionId, SendEntityMessage = message };
                switch (episode++)
                {
                    case 0:
                        response.Actions.Add(Send(0, new P.SendEntityMessageAction
                        {
                            EntityLockRequested = new P.EntityLockRequestedEvent { CriticalSectionId = "cs-1", LockSet = { a, b }, ParentInstanceId = id },
                        }));
                        break;
                    case 1:
                        response.Actions.Add(Send(1, new P.SendEntityMessageAction
                        {
                            EntityOperationCalled = new P.EntityOperationCalledEvent { RequestId = "r-1", Operation = "Withdraw", Input = "30", TargetInstanceId = a, ParentInstanceId = id },
                        }));
                        break;
                    default:
                        response.Actions.Add(Send(2, new P.SendEntityMessageAction { EntityUnlockSent = new P.EntityUnlockSentEvent { CriticalSectionId = "cs-1", TargetInstanceId = a, ParentInstanceId = id } }));
                        response.Actions.Add(Send(3, new P.SendEntityMessageAction { EntityUnlockSent = new P.EntityUnlockSentEvent { CriticalSectionId = "cs-1", TargetInstanceId = b, ParentInstanceId = id } }));
                        response.Actions.Add(Send(4, new P.SendEntityMessageAction
                        {
                            EntityOperationSignaled = new P.EntityOperationSignaledEvent { RequestId = "s-1", Operation = "Note", Input = "\"hi\"", TargetInstanceId = b },
                        }));
                        response.Actions.Add(new P.OrchestratorAction
                        {
                            Id = 5, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = P.OrchestrationStatus.Completed, Result = "70" },
                        });
                        break;
                }

                await client.CompleteOrchestratorTaskAsync(response, SalesHub);
            }
        }

        await RawWorkerLeftAsync();

        var page = await OpenAsync($"hubs/sales/orchestration?id={Uri.EscapeDataString(id)}");
        await Expect(page.GetByTestId("properties").GetByTestId("status")).ToHaveTextAsync("Completed");
        string labelA = a.TrimStart('@'), labelB = b.TrimStart('@');
        await Expect(page.Locator("[data-type=EntityLockRequested] [data-testid=entity-event]")).ToHaveTextAsync($"lock {labelA} {labelB}");
        await Expect(page.Locator("[data-type=EntityLockGranted] [data-testid=entity-event]")).ToContainTextAsync($"locked {labelA} {labelB} after waiting");
        await Expect(page.Locator("[data-type=EntityOperationCalled] [data-testid=entity-event]")).ToHaveTextAsync($"call {labelA} Withdraw(30)");
        await Expect(page.Locator("[data-type=EntityOperationCompleted] [data-testid=entity-event]")).ToContainTextAsync($"result of {labelA} Withdraw");
        await Expect(page.Locator("[data-type=EntityOperationCompleted]").GetByTestId("entity-result")).ToHaveTextAsync("-> 70");
        await Expect(page.Locator("[data-type=EntityUnlockSent]").GetByTestId("lock-held")).ToHaveCountAsync(2);
        await Expect(page.Locator("[data-type=EntityOperationSignaled] [data-testid=entity-event]")).ToHaveTextAsync($"signal {labelB} Note(\"hi\")");

        await Expect(page.GetByTestId("timeline-item")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("timeline-item").Nth(0).GetByTestId("timeline-duration")).ToContainTextAsync("held ");
        var steps = page.GetByTestId("flow-step");
        await Expect(steps).ToHaveCountAsync(3);
        await Expect(steps.Nth(0)).ToContainTextAsync("lock 2 entities");
        await Expect(steps.Nth(1).GetByTestId("flow-step-name")).ToHaveTextAsync("Withdraw");
        await Expect(steps.Nth(1).GetByTestId("entity-link")).ToHaveTextAsync(labelA);
        await Expect(steps.Nth(1)).ToContainTextAsync("-> 70");
        await Expect(steps.Nth(2).GetByTestId("flow-step-name")).ToHaveTextAsync("Note");
        await Expect(steps.Nth(2).GetByTestId("entity-link")).ToHaveTextAsync(labelB);
        await page.Context.CloseAsync();
    }

    /// <summary>Runs an orchestration to completion under a new id ending in <paramref name="suffix"/>, then opens its page.</summary>
    async Task<(string Id, IPage Page)> CompleteAndOpenAsync(string name, object input, string suffix)
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-" + suffix;
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(name, input, new StartOrchestrationOptions(id));
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await fx.CompleteAsync(id)).RuntimeStatus);
        return (id, await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(id)}"));
    }

    [Fact]
    public async Task The_flow_groups_a_fan_out_of_a_thousand_and_shows_retries_and_children()
    {
        var (id, page) = await CompleteAndOpenAsync(Orchestrations.FanOut, 1000, "fanout");

        var steps = page.GetByTestId("flow-step");
        await Expect(steps).ToHaveCountAsync(3);
        var cities = page.Locator("[data-testid=flow-step][data-name=City]");
        await Expect(cities.GetByTestId("flow-count")).ToHaveTextAsync("×1000");
        await Expect(cities.GetByTestId("flow-counts")).ToHaveTextAsync("980 completed, 20 failed");
        await Expect(cities.GetByTestId("flow-failure")).ToHaveCountAsync(3);
        await Expect(cities.GetByTestId("flow-failure").First).ToContainTextAsync("is unreachable");
        await Expect(cities).ToContainTextAsync("and 17 more failures");

        var children = page.Locator("[data-testid=flow-step][data-kind=SubOrchestration]");
        await Expect(children.GetByTestId("flow-counts")).ToHaveTextAsync("2 completed");
        await Expect(page.Locator("[data-testid=flow-step][data-name=FailOnce]").GetByTestId("flow-attempts")).ToHaveTextAsync("2 attempts");
        await page.GetByTestId("flow").ScreenshotAsync(new LocatorScreenshotOptions { Path = Path.Combine(Screenshots, "flow.png") });

        // The timeline shows its first hundred bars until asked for all.
        await Expect(page.GetByTestId("timeline-item")).ToHaveCountAsync(100);
        await Expect(page.GetByTestId("timeline-all")).ToHaveTextAsync("Show all 1005"); // 1000 cities, 2 children, 2 attempts and the timer between them

        // A box links to its history row, on whichever page of the history it is...
        await Expect(page.GetByTestId("history-range")).ToHaveTextAsync(new Regex("^events 0-199 of \\d+$"));
        var link = page.Locator("[data-testid=flow-step][data-name=FailOnce]").GetByTestId("flow-history-link");
        var index = int.Parse((await link.TextContentAsync())!.Replace("history #", ""));
        Assert.True(index > 2000, $"the last step starts at event {index}");
        await link.ClickAsync();
        await Expect(page.Locator($"#event-{index}")).ToBeInViewportAsync();
        await Expect(page.Locator($"#event-{index}")).ToHaveAttributeAsync("data-type", "TaskScheduled");
        await Expect(page.GetByTestId("history-range")).ToContainTextAsync($"events {index / 200 * 200}-");

        // ...and to its child instances.
        await Expect(children.GetByTestId("flow-child")).ToHaveTextAsync([id + "-leg-0", id + "-leg-1"]);
        await children.GetByTestId("flow-child").Nth(1).ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(id + "-leg-1");
        await Expect(page.Locator("[data-testid=flow-step][data-kind=Timer]")).ToHaveCountAsync(1);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_long_flow_shows_forty_rows_at_a_time()
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-alternate";
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Alternate, 30, new StartOrchestrationOptions(id));
        await fx.CompleteAsync(id);
        var page = await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(id)}");

        var stages = page.GetByTestId("flow-stage");
        await Expect(stages).ToHaveCountAsync(40);
        await Expect(page.GetByTestId("flow-end")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("flow-more")).ToHaveTextAsync("Show 20 more");
        await page.GetByTestId("flow-more").ClickAsync();
        await Expect(stages).ToHaveCountAsync(60);
        await Expect(stages.Last.GetByTestId("flow-step-name")).ToHaveTextAsync("City");
        await Expect(page.GetByTestId("flow-end")).ToContainTextAsync("Completed");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_fan_out_of_more_than_five_children_lists_them_when_opened()
    {
        var (id, page) = await CompleteAndOpenAsync(Orchestrations.Children, 6, "children");

        var children = page.Locator("[data-testid=flow-step][data-kind=SubOrchestration]");
        await Expect(children).ToHaveCountAsync(1);
        await Expect(children.GetByTestId("flow-count")).ToHaveTextAsync("×6");
        await Expect(children.GetByTestId("flow-counts")).ToHaveTextAsync("6 completed");

        // Six are too many to list in the box: they are in a list that opens on click.
        var list = children.GetByTestId("flow-children");
        await Expect(list.Locator("summary")).ToHaveTextAsync("6 instances");
        var links = list.GetByTestId("flow-child");
        await Expect(links).ToHaveCountAsync(6);
        await Expect(children.GetByTestId("flow-child")).ToHaveCountAsync(6);
        await Expect(links.First).ToBeHiddenAsync();
        await list.Locator("summary").ClickAsync();
        await Expect(links).ToHaveTextAsync(Enumerable.Range(0, 6).Select(i => $"{id}-child-{i}").ToArray());
        await Expect(links.Nth(5)).ToBeVisibleAsync();
        await links.Nth(5).ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(id + "-child-5");
        await Expect(page.GetByTestId("parent-link")).ToHaveTextAsync(id);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_flow_of_an_execution_that_continued_as_new_starts_with_where_it_came_from()
    {
        // Countdown from 2: three executions; the page shows the last, whose input is 0.
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-countdown";
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Countdown, 2, new StartOrchestrationOptions(id));
        Assert.Equal("\"lift-off\"", (await fx.CompleteAsync(id)).SerializedOutput);
        var page = await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(id)}");

        var continued = page.GetByTestId("flow-continued");
        await Expect(continued).ToContainTextAsync("continue as new continued from an earlier execution");
        await Expect(continued.GetByTestId("flow-continued-input")).ToHaveTextAsync("input 0");
        await Expect(page.Locator("[data-testid=flow] > .flow-stage").First.GetByTestId("flow-continued")).ToHaveCountAsync(1);
        var steps = page.GetByTestId("flow-step");
        await Expect(steps).ToHaveCountAsync(1);
        await Expect(steps.GetByTestId("flow-step-name")).ToHaveTextAsync("Say");
        await Expect(page.GetByTestId("flow-end")).ToContainTextAsync("Completed");
        await page.GetByTestId("flow").ScreenshotAsync(new LocatorScreenshotOptions { Path = Path.Combine(Screenshots, "flow-continue-as-new.png") });

        // It links to the start event of this execution.
        var link = continued.GetByTestId("flow-history-link");
        var index = int.Parse((await link.TextContentAsync())!.Replace("history #", ""));
        await link.ClickAsync();
        await Expect(page.Locator($"#event-{index}")).ToHaveAttributeAsync("data-type", "ExecutionStarted");

        // A first execution did not continue from anything, also when its start was scheduled for later.
        var first = id.Replace("-countdown", "-first");
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Greet, "Lima",
            new StartOrchestrationOptions(first, StartAt: DateTimeOffset.UtcNow.AddSeconds(1)));
        await fx.CompleteAsync(first);
        await page.GotoAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(first)}");
        await Expect(page.GetByTestId("flow-end")).ToContainTextAsync("Completed");
        await Expect(page.GetByTestId("flow-count")).ToHaveTextAsync("×2 in sequence");
        await Expect(page.GetByTestId("flow-continued")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_continue_as_new_whose_new_execution_has_not_started_says_so()
    {
        // A worker speaking the raw protocol on the sales hub (which has no SDK worker) continues its orchestration as
        // new, then holds the new execution's work item while the page is looked at.
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-rawnew";
        using var channel = GrpcChannel.ForAddress(fx.GrpcAddress);
        var client = new P.TaskHubSidecarService.TaskHubSidecarServiceClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var filters = new P.WorkItemFilters();
        filters.Orchestrations.Add(new P.OrchestrationFilter { Name = "RawCountdown" });
        IPage page;
        using (var stream = client.GetWorkItems(new P.GetWorkItemsRequest { WorkItemFilters = filters }, SalesHub, cancellationToken: cts.Token))
        {
            async Task<P.WorkItem> NextAsync()
            {
                while (await stream.ResponseStream.MoveNext(cts.Token))
                {
                    if (stream.ResponseStream.Current.OrchestratorRequest?.InstanceId == id) return stream.ResponseStream.Current;
                }

                throw new InvalidOperationException("the work item stream ended");
            }

            Task Complete(P.WorkItem item, P.OrchestrationStatus status, string result)
            {
                var response = new P.OrchestratorResponse { InstanceId = id, CompletionToken = item.CompletionToken };
                response.Actions.Add(new P.OrchestratorAction { Id = 0, CompleteOrchestration = new P.CompleteOrchestrationAction { OrchestrationStatus = status, Result = result } });
                return client.CompleteOrchestratorTaskAsync(response, SalesHub).ResponseAsync;
            }

            await client.StartInstanceAsync(new P.CreateInstanceRequest { InstanceId = id, Name = "RawCountdown", Input = "1" }, SalesHub);
            await Complete(await NextAsync(), P.OrchestrationStatus.ContinuedAsNew, "0");
            var second = await NextAsync();
            Assert.Equal("0", second.OrchestratorRequest.NewEvents.Single(e => e.ExecutionStarted is not null).ExecutionStarted.Input);

            page = await OpenAsync($"hubs/sales/orchestration?id={Uri.EscapeDataString(id)}");
            await Expect(page.GetByTestId("properties").GetByTestId("status")).ToHaveTextAsync("Running");
            await Expect(page.GetByTestId("flow-continue-pending")).ToContainTextAsync("the new execution has not started yet");
            await Expect(page.GetByTestId("flow-end")).ToContainTextAsync("Running");
            await Expect(page.GetByTestId("flow-waiting")).ToHaveCountAsync(0);
            await Expect(page.GetByTestId("flow-continued")).ToHaveCountAsync(0);

            await Complete(second, P.OrchestrationStatus.Completed, "\"lift-off\"");
        }

        await RawWorkerLeftAsync();

        await page.GetByTestId("reload").ClickAsync();
        await Expect(page.GetByTestId("properties").GetByTestId("status")).ToHaveTextAsync("Completed");
        await Expect(page.GetByTestId("flow-continue-pending")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("flow-continued-input")).ToHaveTextAsync("input 0");
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// Runs <paramref name="check"/> while an orchestration of the name and version waits in the sales hub, which has no
    /// worker, then ends it.
    /// </summary>
    async Task WhileWaitingWithoutAWorkerAsync(string name, string version, Func<Task> check)
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-" + name.ToLowerInvariant();
        using (var started = await fx.Api.PostAsJsonAsync("api/v1/taskhubs/sales/orchestrations", new { name, version, instanceId = id }))
        {
            Assert.Equal(System.Net.HttpStatusCode.Created, started.StatusCode);
        }

        try
        {
            await check();
        }
        finally
        {
            await fx.Api.PostAsJsonAsync($"api/v1/taskhubs/sales/orchestrations/{id}/terminate", new { reason = "done" });
        }
    }

    [Fact]
    public async Task TheWorkersPageFlagsWorkThatNoConnectedWorkerAccepts()
    {
        await WhileWaitingWithoutAWorkerAsync("Ship", "9.9", async () =>
        {
            var page = await OpenAsync("hubs/sales/workers");
            await Expect(page.GetByTestId("no-workers")).ToBeVisibleAsync();
            var row = page.GetByTestId("backlog-group").Filter(new() { HasText = "Ship" });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row.GetByTestId("backlog-flag")).ToHaveTextAsync("waiting for a worker of orchestration Ship version 9.9");
            await Shot(page, "waiting-work.png");

            // The default hub's worker takes everything: no filters.
            await page.GotoAsync("hubs/default/workers");
            await Expect(page.GetByTestId("worker-filters")).ToHaveTextAsync("everything");
            await page.Context.CloseAsync();
        });
    }

    [Fact]
    public async Task VersionsInTheStartFormTheListAndItsFilter()
    {
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        var page = await OpenAsync("hubs/default/start");
        await page.GetByTestId("start-name").FillAsync(Orchestrations.Greet);
        await page.GetByTestId("start-version").FillAsync("2.0");
        await page.GetByTestId("start-id").FillAsync(p + "v2");
        await page.GetByTestId("start-input").FillAsync("\"Lima\"");
        await page.GetByTestId("start-submit").ClickAsync();
        await Expect(page.GetByTestId("confirm-dialog")).ToContainTextAsync("Greet version 2.0");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(p + "v2");
        await fx.CompleteAsync(p + "v2");
        var started = await fx.Api.GetFromJsonAsync<System.Text.Json.JsonElement>($"api/v1/taskhubs/default/orchestrations/{p}v2");
        Assert.Equal("2.0", started.GetProperty("version").GetString());
        using (var v1 = await fx.Api.PostAsJsonAsync("api/v1/taskhubs/default/orchestrations", new { name = Orchestrations.Greet, version = "1.0", instanceId = p + "v1" }))
        {
            Assert.Equal(System.Net.HttpStatusCode.Created, v1.StatusCode);
        }

        await fx.CompleteAsync(p + "v1");

        // The list shows each instance's version, and filters by it (the filter lives in the address).
        await page.GotoAsync($"hubs/default/orchestrations?prefix={p}");
        var rows = page.GetByTestId("row");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(page.Locator($"[data-instance-id='{p}v1'] [data-testid=version]")).ToHaveTextAsync("1.0");
        await Expect(page.Locator($"[data-instance-id='{p}v2'] [data-testid=version]")).ToHaveTextAsync("2.0");
        await page.GetByTestId("filter-version").FillAsync("2.0");
        await page.GetByTestId("filter-apply").ClickAsync();
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.First).ToHaveAttributeAsync("data-instance-id", p + "v2");
        await Expect(page.GetByTestId("matching")).ToHaveTextAsync("1 matching");
        Assert.Contains("version=2.0", page.Url);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task TheOverviewNamesWaitingWorkThatNoConnectedWorkerCanTake()
    {
        await WhileWaitingWithoutAWorkerAsync("Invoice", "3.1", async () =>
        {
            var page = await OpenAsync("hubs/sales");
            var row = page.GetByTestId("waiting-work").GetByTestId("backlog-group").Filter(new() { HasText = "Invoice" });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row).ToContainTextAsync("3.1");
            await Expect(row.GetByTestId("backlog-flag")).ToHaveTextAsync("waiting for a worker of orchestration Invoice version 3.1");

            // The default hub's worker takes everything that waits there: nothing is flagged.
            await page.GotoAsync("hubs/default");
            await Expect(page.GetByTestId("status-counts")).ToBeVisibleAsync();
            await Expect(page.GetByTestId("waiting-work").Locator("tr.unserved")).ToHaveCountAsync(0);
            await page.Context.CloseAsync();
        });
    }

    [Fact]
    public async Task BulkSuspendResumeRaiseEventAndRewindWithTheFailuresReported()
    {
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        for (int i = 1; i <= 2; i++) await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions($"{p}wait-{i}"));
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Flaky, p + "flaky", new StartOrchestrationOptions(p + "flaky"));
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Greet, "Quito", new StartOrchestrationOptions(p + "greet"));
        for (int i = 1; i <= 2; i++) await fx.StartedAsync($"{p}wait-{i}");
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await fx.CompleteAsync(p + "flaky")).RuntimeStatus);
        await fx.CompleteAsync(p + "greet");

        async Task All(OrchestrationRuntimeStatus status) => await DashboardFixture.Eventually(async () =>
            (await fx.Client.GetInstanceAsync(p + "wait-1"))?.RuntimeStatus == status && (await fx.Client.GetInstanceAsync(p + "wait-2"))?.RuntimeStatus == status,
            $"both waiting instances are {status}");

        var page = await OpenAsync($"hubs/default/orchestrations?prefix={p}");
        var rows = page.GetByTestId("row");
        await Expect(rows).ToHaveCountAsync(4);

        // Suspend the two selected instances.
        foreach (var id in new[] { "wait-1", "wait-2" }) await page.Locator($"[data-instance-id='{p}{id}'] input[type=checkbox]").CheckAsync();
        await page.GetByTestId("bulk-suspend").ClickAsync();
        await Expect(page.GetByTestId("bulk-target")).ToHaveTextAsync("2 selected instances");
        await page.GetByTestId("reason").FillAsync("audit");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Suspended 2 of 2 instances.");
        await All(OrchestrationRuntimeStatus.Suspended);

        // Resume everything the filter matches: only the suspended ones resume.
        await page.GetByTestId("bulk-resume").ClickAsync();
        await Expect(page.GetByTestId("bulk-target")).ToContainTextAsync("all 4 instances matching");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Resumed 2 of 4 instances (2 not suspended, skipped).");
        await All(OrchestrationRuntimeStatus.Running);

        // Raise an event in everything that matches.
        await RaiseApprovalAsync(page, "bulk-raise", "Ada");
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Raised 'approve' in 2 of 4 instances (2 finished, skipped).");
        for (int i = 1; i <= 2; i++) Assert.Equal("\"approved by Ada\"", (await fx.CompleteAsync($"{p}wait-{i}")).SerializedOutput);

        // Rewind everything that matches: the failed one is rewound, the others are reported with the reason.
        await page.GetByTestId("bulk-rewind").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Rewound 1 of 4 instances; 3 failed.");
        var failures = page.GetByTestId("bulk-failure");
        await Expect(failures).ToHaveCountAsync(3);
        await Expect(page.Locator($"[data-testid=bulk-failure][data-instance-id='{p}greet']")).ToContainTextAsync("is Completed; only a failed instance can be rewound");
        await Expect(page.Locator($"[data-testid=bulk-failure][data-instance-id='{p}flaky']")).ToHaveCountAsync(0);
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(p + "flaky"))?.RuntimeStatus == OrchestrationRuntimeStatus.Completed, "the rewound instance completed");
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// Runs a bulk change through <paramref name="run"/> and returns every value its progress took in the dialog, in order
    /// ("0,50,100,120"), and the progress last shown ("120 of 120"). The browser may apply several of the page's updates
    /// at once, but each change of the count leaves the value it replaced in a mutation record.
    /// </summary>
    static async Task<(string Values, string Last)> ProgressOfAsync(IPage page, Func<Task> run)
    {
        await page.EvaluateAsync("""
            () => {
                window.bulkProgress?.observer.disconnect();
                const seen = window.bulkProgress = { values: [], node: null };
                seen.observer = new MutationObserver(records => {
                    for (const r of records) {
                        const text = r.target.parentElement;
                        if (r.type !== 'characterData' || text?.dataset.testid !== 'bulk-progress-text' || text.firstChild !== r.target) continue;
                        seen.values.push(r.oldValue);
                        seen.node = r.target;
                    }
                });
                seen.observer.observe(document.body, { subtree: true, characterData: true, characterDataOldValue: true });
            }
            """);
        await run();
        var values = await page.EvaluateAsync<string>("() => window.bulkProgress.values.concat(window.bulkProgress.node ? [window.bulkProgress.node.data] : []).join(',')");
        var last = await page.EvaluateAsync<string>("() => window.bulkProgress.node?.parentElement.textContent ?? ''");
        return (values, last);
    }

    [Fact]
    public async Task BulkChangesOverManyInstancesShowTheirProgressAndListTheFailures()
    {
        // 120 instances: the dialog applies a change 50 at a time, so it shows 0, 50, 100 and 120 of 120 done.
        const int n = 120;
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        var ids = Enumerable.Range(0, n).Select(i => $"{p}w-{i:000}").ToList();
        foreach (var id in ids) await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions(id));
        foreach (var id in ids) await fx.StartedAsync(id);

        Task AllAsync(string status) => DashboardFixture.Eventually(async () =>
            (await fx.Api.GetFromJsonAsync<System.Text.Json.JsonElement>($"api/v1/taskhubs/default/counts?prefix={p}&status={status}")).GetProperty("total").GetInt32() == n,
            $"all {n} instances are {status}");

        var page = await OpenAsync($"hubs/default/orchestrations?prefix={p}");
        await Expect(page.GetByTestId("matching")).ToHaveTextAsync($"{n} matching");
        const string Steps = "0,50,100,120";
        const string Last = "120 of 120";

        var suspend = await ProgressOfAsync(page, async () =>
        {
            await page.GetByTestId("bulk-suspend").ClickAsync();
            await Expect(page.GetByTestId("bulk-target")).ToContainTextAsync($"all {n} instances matching");
            await page.GetByTestId("confirm").ClickAsync();
            await Expect(page.GetByTestId("action-result")).ToHaveTextAsync($"Suspended {n} of {n} instances.");
        });
        Assert.Equal((Steps, Last), suspend);
        await AllAsync("Suspended");

        // None of them failed, so every rewind fails: the first hundred are listed with the reason, the rest counted.
        var rewind = await ProgressOfAsync(page, async () =>
        {
            await page.GetByTestId("bulk-rewind").ClickAsync();
            await page.GetByTestId("confirm").ClickAsync();
            await Expect(page.GetByTestId("action-result")).ToHaveTextAsync($"Rewound 0 of {n} instances; {n} failed.");
        });
        Assert.Equal((Steps, Last), rewind);
        var failures = page.GetByTestId("bulk-failures");
        await Expect(failures.Locator("h3")).ToHaveTextAsync($"{n} failed");
        await Expect(failures.GetByTestId("bulk-failure")).ToHaveCountAsync(100);
        await Expect(failures.Locator($"[data-instance-id='{ids[0]}']")).ToContainTextAsync("is Suspended; only a failed instance can be rewound");
        await Expect(failures.Locator($"[data-instance-id='{ids[99]}']")).ToHaveCountAsync(1);
        await Expect(failures.Locator($"[data-instance-id='{ids[100]}']")).ToHaveCountAsync(0);
        await Expect(failures).ToContainTextAsync("and 20 more.");

        var resume = await ProgressOfAsync(page, async () =>
        {
            await page.GetByTestId("bulk-resume").ClickAsync();
            await page.GetByTestId("confirm").ClickAsync();
            await Expect(page.GetByTestId("action-result")).ToHaveTextAsync($"Resumed {n} of {n} instances.");
        });
        Assert.Equal((Steps, Last), resume);
        await Expect(page.GetByTestId("bulk-failures")).ToHaveCountAsync(0);
        await AllAsync("Running");

        var raise = await ProgressOfAsync(page, async () =>
        {
            await RaiseApprovalAsync(page, "bulk-raise", "Lin");
            await Expect(page.GetByTestId("action-result")).ToHaveTextAsync($"Raised 'approve' in {n} of {n} instances.");
        });
        Assert.Equal((Steps, Last), raise);
        foreach (var id in new[] { ids[0], ids[50], ids[^1] }) Assert.Equal("\"approved by Lin\"", (await fx.CompleteAsync(id)).SerializedOutput);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task StartAnOrchestrationFromTheBrowser()
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-started";
        var page = await OpenAsync("hubs/default/start");
        await page.GetByTestId("start-name").FillAsync(Orchestrations.Greet);
        await page.GetByTestId("start-id").FillAsync(id);
        await page.GetByTestId("start-input").FillAsync("\"Nairobi\"");
        await page.GetByTestId("start-tags").FillAsync("source=browser");
        await page.GetByTestId("start-submit").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("instance-id")).ToHaveTextAsync(id);

        var done = await fx.CompleteAsync(id);
        Assert.Equal("\"Hello, Nairobi! Hello, London!\"", done.SerializedOutput);
        Assert.Equal("browser", done.Tags["source"]);

        // Bad input is refused before anything is sent.
        await page.GotoAsync("hubs/default/start");
        await page.GetByTestId("start-name").FillAsync(Orchestrations.Greet);
        await page.GetByTestId("start-input").FillAsync("{broken");
        await page.GetByTestId("start-submit").ClickAsync();
        await Expect(page.GetByTestId("error")).ToContainTextAsync("not valid JSON");

        // Entities: signal one, see its state, delete the state.
        var key = id.Replace("-started", "-counter");
        await page.GotoAsync($"hubs/default/entities?prefix=counter@{key}");
        await Expect(page.GetByTestId("no-entities")).ToBeVisibleAsync();
        await page.GetByTestId("signal-new").ClickAsync();
        await page.GetByTestId("signal-entity-id").FillAsync($"@counter@{key}");
        await page.GetByTestId("signal-operation").FillAsync("Add");
        await page.GetByTestId("signal-input").FillAsync("3");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync($"Signalled @counter@{key}: Add.");
        var entityId = new Microsoft.DurableTask.Entities.EntityInstanceId("Counter", key);
        await DashboardFixture.Eventually(async () => (await fx.Client.Entities.GetEntityAsync(entityId))?.State.ReadAs<int>() == 3, "the counter is 3");
        await page.GetByTestId("reload").ClickAsync();
        await Expect(page.GetByTestId("entity-state")).ToHaveTextAsync("3");
        await Shot(page, "entities.png");
        await page.GetByTestId("entity-delete").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("no-entities")).ToBeVisibleAsync();
        Assert.Null(await fx.Client.Entities.GetEntityAsync(entityId));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task LargePayloadsAreCutWithADownload()
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-big";
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.BigOutput, 50_000, new StartOrchestrationOptions(id));
        await fx.CompleteAsync(id);

        var page = await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(id)}");
        var output = page.GetByTestId("payload-output");
        await Expect(output).ToContainTextAsync("Showing 2000 of 48.8 K characters");
        var download = await page.RunAndWaitForDownloadAsync(() => output.GetByTestId("download").ClickAsync());
        var path = await download.PathAsync();
        Assert.Equal(50_002, (await File.ReadAllTextAsync(path)).Length);
        Assert.EndsWith(".json", download.SuggestedFilename);

        // The relay answers the scheduler's problem for what does not exist.
        using var http = new HttpClient { BaseAddress = new Uri(fx.DashboardAddress) };
        using var missing = await http.GetAsync($"download/default/payload?id={Uri.EscapeDataString(id)}&kind=customStatus");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task AutoRefreshAndTheHubPicker()
    {
        var p = $"ui{Guid.NewGuid():N}"[..8] + "-";
        var page = await OpenAsync($"hubs/default/orchestrations?prefix={p}");
        await Expect(page.GetByTestId("empty")).ToBeVisibleAsync();
        await page.GetByTestId("auto-refresh").CheckAsync();
        await Expect(page).ToHaveURLAsync(new Regex("refresh=true"));
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Greet, "Lagos", new StartOrchestrationOptions(p + "late"));
        await fx.CompleteAsync(p + "late");
        await Expect(page.GetByTestId("row")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("row").GetByTestId("status")).ToHaveTextAsync("Completed");

        // Switching hubs keeps the page and drops the other hub's filters.
        await page.GetByTestId("hub-picker").SelectOptionAsync("sales");
        await Expect(page).ToHaveURLAsync(new Regex("hubs/sales/orchestrations$"));
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Orchestrations" })).ToBeVisibleAsync();
        await Expect(page.Locator($"[data-instance-id='{p}late']")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SuspendResumeRaiseEventAndRewindInTheBrowser()
    {
        var id = $"ui{Guid.NewGuid():N}"[..8] + "-approval";
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.WaitForApproval, null, new StartOrchestrationOptions(id));
        await fx.StartedAsync(id);

        var page = await OpenAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(id)}");
        var status = page.GetByTestId("properties").GetByTestId("status");
        await Expect(status).ToHaveTextAsync("Running");
        await Expect(page.GetByTestId("flow-waiting")).ToHaveTextAsync("nothing is open: waiting for an event");

        await page.GetByTestId("action-suspend").ClickAsync();
        await page.GetByTestId("reason").FillAsync("audit");
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Suspend requested.");
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(id))?.RuntimeStatus == OrchestrationRuntimeStatus.Suspended, "suspended");
        await page.GetByTestId("reload").ClickAsync();
        await Expect(status).ToHaveTextAsync("Suspended");

        await page.GetByTestId("action-resume").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(id))?.RuntimeStatus == OrchestrationRuntimeStatus.Running, "resumed");

        // The event reaches the orchestration.
        await page.GetByTestId("reload").ClickAsync();
        await RaiseApprovalAsync(page, "action-raise", "Grace");
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Event 'approve' raised.");
        var done = await fx.CompleteAsync(id);
        Assert.Equal("\"approved by Grace\"", done.SerializedOutput);
        await page.GetByTestId("reload").ClickAsync();
        await Expect(page.Locator("[data-testid=history-event][data-type=EventRaised]")).ToHaveCountAsync(1);
        await Expect(page.Locator("[data-testid=history-event][data-type=ExecutionSuspended]")).ToHaveCountAsync(1);
        var received = page.Locator("[data-testid=flow-step][data-kind=EventReceived]");
        await Expect(received.GetByTestId("flow-step-name")).ToHaveTextAsync("approve");
        await Expect(received).ToContainTextAsync("-> \"Grace\"");
        await Expect(page.Locator("[data-testid=flow-step][data-kind=Suspended]")).ToHaveCountAsync(1);
        await Expect(page.GetByTestId("flow-waiting")).ToHaveCountAsync(0);

        // Rewind a failed instance from its page: the flaky activity succeeds the second time.
        var flaky = id.Replace("-approval", "-flaky");
        await fx.Client.ScheduleNewOrchestrationInstanceAsync(Orchestrations.Flaky, flaky, new StartOrchestrationOptions(flaky));
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await fx.CompleteAsync(flaky)).RuntimeStatus);
        await page.GotoAsync($"hubs/default/orchestration?id={Uri.EscapeDataString(flaky)}");
        await page.GetByTestId("action-rewind").ClickAsync();
        await page.GetByTestId("confirm").ClickAsync();
        await Expect(page.GetByTestId("action-result")).ToHaveTextAsync("Rewind requested.");

        await DashboardFixture.Eventually(async () => (await fx.Client.GetInstanceAsync(flaky))?.RuntimeStatus == OrchestrationRuntimeStatus.Completed, "completed");

        // The rewound execution is the same one, not one continued from an earlier execution.
        await page.GetByTestId("reload").ClickAsync();
        await Expect(page.GetByTestId("flow-end")).ToContainTextAsync("Completed");
        await Expect(page.GetByTestId("flow-continued")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }
}
