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
        ["HistoryEvent"] = "OrchestrationPatternTests.ContinueAsNew_NewExecutionId_AndUnprocessedEventsAreCarriedOver",
        ["TaskFailureDetails"] = "OrchestrationPatternTests.SubOrchestrationFailure_FailureDetailsChainReachesParentAndClient",
        ["TraceContext"] = "TelemetryTests.EverySpanOfTheInstanceOnEitherSideIsInTheClientsTrace",
    };

    /// <summary>Fields the scheduler honours, each with the test (<c>Class.Method</c>) that exercises it.</summary>
    static readonly Dictionary<string, string> Honoured = new()
    {
        ["CreateInstanceRequest.instanceId"] = Reuse,
        ["CreateInstanceRequest.name"] = Sequence,
        ["CreateInstanceRequest.version"] = NewVersion,
        ["CreateInstanceRequest.input"] = Sequence,
        ["CreateInstanceRequest.scheduledStartTimestamp"] = "InstanceManagementTests.ScheduledStart_DoesNotStartBeforeTheTime",
        ["CreateInstanceRequest.orchestrationIdReusePolicy"] = Reuse,
        ["OrchestrationIdReusePolicy.replaceableStatus"] = Reuse,
        ["CreateInstanceRequest.executionId"] = "ProtocolFieldTests.StartInstance_WithAnExecutionId_RunsTheFirstExecutionUnderIt",
        ["CreateInstanceRequest.tags"] = "OrchestrationPatternTests.Tags_RoundTripOnStart",
        ["CreateInstanceRequest.parentTraceContext"] = "TelemetryTests.TheClientsCreateSpanStartsTheTrace",

        ["GetInstanceRequest.instanceId"] = Reads,
        ["GetInstanceRequest.getInputsAndOutputs"] = Reads,
        ["RewindInstanceRequest.instanceId"] = Rewind,
        ["RewindInstanceRequest.reason"] = Rewind,
        ["RestartInstanceRequest.instanceId"] = "InstanceManagementTests.Restart_WithSameId_RunsAgain",
        ["RestartInstanceRequest.restartWithNewInstanceId"] = "InstanceManagementTests.Restart_WithNewId_StartsANewInstanceWithTheSameInput",
        ["RaiseEventRequest.instanceId"] = RaiseEvent,
        ["RaiseEventRequest.name"] = RaiseEvent,
        ["RaiseEventRequest.input"] = RaiseEvent,
        ["TerminateRequest.instanceId"] = Terminate,
        ["TerminateRequest.output"] = Terminate,
        ["TerminateRequest.recursive"] = "InstanceManagementTests.Terminate_Recursive_TerminatesSubOrchestrations",
        ["SuspendRequest.instanceId"] = SuspendResume,
        ["SuspendRequest.reason"] = SuspendResume,
        ["ResumeRequest.instanceId"] = SuspendResume,
        ["ResumeRequest.reason"] = SuspendResume,

        ["QueryInstancesRequest.query"] = Query,
        ["InstanceQuery.runtimeStatus"] = Query,
        ["InstanceQuery.createdTimeFrom"] = Query,
        ["InstanceQuery.createdTimeTo"] = Query,
        ["InstanceQuery.instanceIdPrefix"] = Query,
        ["InstanceQuery.maxInstanceCount"] = QueryPages,
        ["InstanceQuery.continuationToken"] = QueryPages,
        ["InstanceQuery.fetchInputsAndOutputs"] = Reads,
        ["ListInstanceIdsRequest.runtimeStatus"] = ListIds,
        ["ListInstanceIdsRequest.pageSize"] = ListIds,
        ["ListInstanceIdsRequest.lastInstanceKey"] = ListIds,
        ["PurgeInstancesRequest.instanceId"] = "QueryAndPurgeTests.Purge_SingleInstance",
        ["PurgeInstancesRequest.purgeInstanceFilter"] = PurgeByFilter,
        ["PurgeInstanceFilter.createdTimeFrom"] = PurgeByFilter,
        ["PurgeInstanceFilter.createdTimeTo"] = PurgeByFilter,
        ["PurgeInstanceFilter.runtimeStatus"] = PurgeByFilter,
        ["PurgeInstancesRequest.recursive"] = "QueryAndPurgeTests.Purge_Recursive_RemovesSubOrchestrations",
        ["PurgeInstancesRequest.isOrchestration"] = "ProtocolFieldTests.Purge_OfAnOrchestrationWhoseIdLooksLikeAnEntitys_PurgesTheOrchestration",
        ["InstanceBatch.instanceIds"] = SkipGraceful,
        ["StreamInstanceHistoryRequest.instanceId"] = "InstanceManagementTests.History_IsReturnedInOrderWithMatchingIds",
        ["StreamInstanceHistoryRequest.executionId"] = Streaming,
        ["SkipGracefulOrchestrationTerminationsRequest.instanceBatch"] = SkipGraceful,
        ["SkipGracefulOrchestrationTerminationsRequest.reason"] = SkipGraceful,

        ["GetWorkItemsRequest.maxConcurrentOrchestrationWorkItems"] = "OrchestrationCapTests.AWorkerAllowingMore_HoldsTheCap_AndGetsTheRestAsItCompletes",
        ["GetWorkItemsRequest.maxConcurrentActivityWorkItems"] = "WorkItemTests.WorkerConcurrencyLimit_IsHonoured",
        ["GetWorkItemsRequest.capabilities"] = Streaming,
        ["WorkerCapability.WORKER_CAPABILITY_HISTORY_STREAMING"] = Streaming,
        ["GetWorkItemsRequest.workItemFilters"] = Filters,
        ["WorkItemFilters.orchestrations"] = Filters,
        ["OrchestrationFilter.name"] = Filters,
        ["WorkItemFilters.activities"] = Filters,
        ["ActivityFilter.name"] = Filters,
        ["OrchestrationFilter.versions"] = RollingUpgrade,
        ["ActivityFilter.versions"] = RollingUpgrade,
        ["AbandonActivityTaskRequest.completionToken"] = Abandon,
        ["AbandonOrchestrationTaskRequest.completionToken"] = Abandon,

        ["ActivityResponse.instanceId"] = Sequence,
        ["ActivityResponse.taskId"] = Sequence,
        ["ActivityResponse.result"] = Sequence,
        ["ActivityResponse.completionToken"] = Sequence,
        ["ActivityResponse.failureDetails"] = Rewind,

        ["OrchestratorResponse.instanceId"] = Sequence,
        ["OrchestratorResponse.actions"] = Sequence,
        ["OrchestratorResponse.completionToken"] = Sequence,
        ["OrchestratorResponse.customStatus"] = "OrchestrationPatternTests.CustomStatus_IsVisibleWhileRunningAndAfterCompletion",
        ["OrchestratorResponse.numEventsProcessed"] = Chunked,
        ["OrchestratorResponse.isPartial"] = Chunked,
        ["OrchestratorResponse.orchestrationTraceContext"] = WorkerSpan,
        ["OrchestrationTraceContext.spanID"] = WorkerSpan,
        ["OrchestrationTraceContext.spanStartTime"] = WorkerSpan,
        ["OrchestratorAction.id"] = Sequence,
        ["OrchestratorAction.scheduleTask"] = Sequence,
        ["ScheduleTaskAction.name"] = Sequence,
        ["ScheduleTaskAction.input"] = Sequence,
        ["ScheduleTaskAction.version"] = ScheduleTask,
        ["ScheduleTaskAction.tags"] = ScheduleTask,
        ["ScheduleTaskAction.parentTraceContext"] = "TelemetryTests.EachActivityIsDispatchedAndRunInTheSameTrace",
        ["OrchestratorAction.createSubOrchestration"] = SubOrchestration,
        ["CreateSubOrchestrationAction.instanceId"] = SubOrchestration,
        ["CreateSubOrchestrationAction.name"] = SubOrchestration,
        ["CreateSubOrchestrationAction.input"] = SubOrchestration,
        ["CreateSubOrchestrationAction.version"] = "OrchestrationStateMachineTests.Create_sub_orchestration_records_the_event_and_starts_the_child",
        ["CreateSubOrchestrationAction.tags"] = "OrchestrationPatternTests.SubOrchestrationTags_ReachTheChild",
        ["CreateSubOrchestrationAction.parentTraceContext"] = "TelemetryTests.EverySpanOfTheInstanceOnEitherSideIsInTheClientsTrace",
        ["OrchestratorAction.createTimer"] = Timer,
        ["CreateTimerAction.fireAt"] = Timer,
        ["OrchestratorAction.sendEvent"] = SendEvent,
        ["SendEventAction.instance"] = SendEvent,
        ["SendEventAction.name"] = SendEvent,
        ["SendEventAction.data"] = SendEvent,
        ["OrchestrationInstance.instanceId"] = SendEvent,
        ["OrchestrationInstance.executionId"] = "OrchestrationStateMachineTests.Send_event_records_it_and_sends_it_to_its_target",
        ["OrchestratorAction.completeOrchestration"] = Sequence,
        ["CompleteOrchestrationAction.orchestrationStatus"] = Sequence,
        ["CompleteOrchestrationAction.result"] = Sequence,
        ["CompleteOrchestrationAction.failureDetails"] = Reads,
        ["CompleteOrchestrationAction.newVersion"] = NewVersion,
        ["CompleteOrchestrationAction.carryoverEvents"] = "OrchestrationPatternTests.ContinueAsNew_NewExecutionId_AndUnprocessedEventsAreCarriedOver",
        ["CompleteOrchestrationAction.tags"] = "ProtocolFieldTests.ContinueAsNew_WithTags_ReplacesTheTags_AndWithoutTagsKeepsThem",
        ["OrchestratorAction.terminateOrchestration"] = TerminateAction,
        ["TerminateOrchestrationAction.instanceId"] = TerminateAction,
        ["TerminateOrchestrationAction.reason"] = TerminateAction,
        ["TerminateOrchestrationAction.recurse"] = TerminateAction,
        ["OrchestratorAction.rewindOrchestration"] = Rewind,
        ["RewindOrchestrationAction.newHistory"] = Rewind,

        // Entity messages an orchestration sends in the explicit encoding (the entity tests run it).
        ["OrchestratorAction.sendEntityMessage"] = EntityMessages,
        ["SendEntityMessageAction.entityOperationSignaled"] = Signal,
        ["EntityOperationSignaledEvent.requestId"] = Signal,
        ["EntityOperationSignaledEvent.operation"] = Signal,
        ["EntityOperationSignaledEvent.input"] = Signal,
        ["EntityOperationSignaledEvent.targetInstanceId"] = Signal,
        ["SendEntityMessageAction.entityOperationCalled"] = Call,
        ["EntityOperationCalledEvent.requestId"] = Call,
        ["EntityOperationCalledEvent.operation"] = Call,
        ["EntityOperationCalledEvent.input"] = Call,
        ["EntityOperationCalledEvent.parentInstanceId"] = Call,
        ["EntityOperationCalledEvent.targetInstanceId"] = Call,
        ["EntityOperationCalledEvent.parentExecutionId"] = "EntityTests.Entity_response_to_an_execution_that_continued_as_new_is_dropped",
        ["SendEntityMessageAction.entityLockRequested"] = Lock,
        ["EntityLockRequestedEvent.criticalSectionId"] = Lock,
        ["EntityLockRequestedEvent.lockSet"] = Lock,
        ["EntityLockRequestedEvent.position"] = Lock,
        ["EntityLockRequestedEvent.parentInstanceId"] = Lock,
        ["SendEntityMessageAction.entityUnlockSent"] = Lock,
        ["EntityUnlockSentEvent.criticalSectionId"] = Lock,
        ["EntityUnlockSentEvent.parentInstanceId"] = Lock,
        ["EntityUnlockSentEvent.targetInstanceId"] = Lock,

        // Entity work item results.
        ["EntityBatchResult.results"] = Call,
        ["EntityBatchResult.completionToken"] = Call,
        ["EntityBatchResult.entityState"] = Counter,
        ["EntityBatchResult.failureDetails"] = "EntityRulesTests.A_batch_the_worker_could_not_run_is_retried_later_unchanged",
        ["OperationResult.success"] = Call,
        ["OperationResultSuccess.result"] = Call,
        ["OperationResult.failure"] = CallFailure,
        ["OperationResultFailure.failureDetails"] = CallFailure,
        ["EntityBatchResult.actions"] = EntityActions,
        ["OperationAction.sendSignal"] = EntityActions,
        ["SendSignalAction.instanceId"] = EntityActions,
        ["SendSignalAction.name"] = EntityActions,
        ["SendSignalAction.input"] = EntityActions,
        ["OperationAction.startNewOrchestration"] = EntityActions,
        ["StartNewOrchestrationAction.instanceId"] = EntityActions,
        ["StartNewOrchestrationAction.name"] = EntityActions,
        ["StartNewOrchestrationAction.input"] = EntityActions,
        ["StartNewOrchestrationAction.tags"] = EntityActions,

        // Entity client calls.
        ["SignalEntityRequest.instanceId"] = Counter,
        ["SignalEntityRequest.name"] = Counter,
        ["SignalEntityRequest.input"] = Counter,
        ["SignalEntityRequest.requestId"] = "EntityTests.Signals_with_the_same_request_id_are_applied_once",
        ["SignalEntityRequest.scheduledTime"] = "EntityTests.Scheduled_signal_is_not_delivered_early",
        ["GetEntityRequest.instanceId"] = Counter,
        ["GetEntityRequest.includeState"] = Counter,
        ["QueryEntitiesRequest.query"] = EntityQueries,
        ["EntityQuery.instanceIdStartsWith"] = EntityQueries,
        ["EntityQuery.includeState"] = EntityQueries,
        ["EntityQuery.pageSize"] = EntityQueries,
        ["EntityQuery.continuationToken"] = EntityQueries,
        ["CleanEntityStorageRequest.removeEmptyEntities"] = EntityQueries,
        ["CleanEntityStorageRequest.releaseOrphanedLocks"] = EntityQueries,
        ["CreateTaskHubRequest.recreateIfExists"] = "ProtocolFieldTests.CreateTaskHub_AnswersForTheHub_AndRefusesToRecreateIt",
    };

    const string Sequence = "OrchestrationPatternTests.ActivitySequence_RunsActivitiesInOrder";
    const string Reads = "ProtocolFieldTests.ReadsWithoutPayloads_LeaveOutTheFailureDetails_AndKeepTheStatus";
    const string NewVersion = "ProtocolFieldTests.ContinueAsNew_WithANewVersion_StartsTheNextExecutionAtThatVersion";
    const string SkipGraceful = "ProtocolFieldTests.SkipGracefulTerminations_EndAStuckInstanceAtOnce_AndNameTheOnesLeftAlone";
    const string Abandon = "ProtocolFieldTests.AbandonedWorkItems_AreHandedOutAgain";
    const string Reuse = "InstanceManagementTests.InstanceIdReuse_DedupeStatusesRejectOrAllowReplacement";
    const string Rewind = "InstanceManagementTests.Rewind_FailedOrchestration_CompletesWithoutRerunningSucceededWork";
    const string Terminate = "InstanceManagementTests.Terminate_RunningInstance_ReturnsTheGivenOutput";
    const string SuspendResume = "InstanceManagementTests.SuspendResume_StatusTransitions";
    const string ListIds = "InstanceManagementTests.ListInstanceIds_PagesByLastInstanceKey";
    const string RaiseEvent = "OrchestrationPatternTests.ExternalEvent_RaisedBeforeTheOrchestrationWaits_IsDelivered";
    const string SubOrchestration = "OrchestrationPatternTests.SubOrchestration_ResultReachesParent";
    const string Timer = "OrchestrationPatternTests.DurableTimer_NeverFiresEarly";
    const string SendEvent = "OrchestrationPatternTests.SendEvent_BetweenOrchestrations_IsDelivered";
    const string Query = "QueryAndPurgeTests.Query_FiltersByStatusCreatedTimeAndPrefix";
    const string QueryPages = "QueryAndPurgeTests.Query_PagesWithContinuationTokens_AndPageSizeMayChangeMidway";
    const string PurgeByFilter = "QueryAndPurgeTests.Purge_ByFilter_RemovesOnlyMatchingTerminalInstances";
    const string Streaming = "WorkItemTests.HistoryStreaming_OnlyForWorkersAnnouncingIt";
    const string Filters = "WorkItemTests.WorkItemFilters_EachWorkerOnlyGetsItsOwnWork";
    const string RollingUpgrade = "VersionRoutingTests.RollingUpgrade_EveryOrchestrationAndActivityRunsOnTheWorkerOfItsVersion";
    const string Chunked = "WorkItemTests.ChunkedCompletion_LargeFanOutCompletes";
    const string WorkerSpan = "TelemetryTests.TheWorkersOrchestrationSpanIsAChildOfTheClientsCreateSpan";
    const string ScheduleTask = "OrchestrationStateMachineTests.Schedule_task_records_the_event_asks_for_the_activity_and_counts_it_open";
    const string TerminateAction = "OrchestrationStateMachineTests.Terminate_action_sends_a_termination_and_records_nothing_of_its_own";
    const string EntityMessages = "OrchestrationStateMachineTests.Entity_messages_of_every_kind_are_recorded_and_routed";
    const string Signal = "EntityTests.Orchestration_signal_reaches_entity";
    const string Call = "EntityTests.Orchestration_calls_entity_and_gets_result";
    const string CallFailure = "EntityTests.Orchestration_call_failure_reaches_the_caller";
    const string Lock = "EntityTests.Critical_section_over_two_entities_loses_no_update_under_contention";
    const string EntityActions = "EntityTests.Entity_actions_signal_entities_and_start_orchestrations";
    const string Counter = "EntityTests.Counter_signalled_1000_times_by_10_clients_ends_at_1000";
    const string EntityQueries = "EntityTests.Queries_page_through_entities_and_clean_storage_counts";

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

    [Fact]
    public void Every_named_test_exists_and_every_entry_names_a_field_of_the_protocol()
    {
        var fields = RequestFields();
        var problems = new List<string>();
        foreach (var (entry, test) in Honoured.Concat(KeptAsSent))
        {
            if (TestMethod(test) is null) problems.Add($"{entry}: the test {test} named for it does not exist (Class.Method of a [Fact] or [Theory]).");
        }

        foreach (var field in Honoured.Keys)
        {
            if (!fields.ContainsKey(field)) problems.Add($"{nameof(Honoured)} names {field}, which no request of the protocol has: remove it.");
        }

        foreach (var (field, rest) in DocumentedFields())
        {
            if (!fields.ContainsKey(field)) problems.Add($"docs/protocol-fields.md lists {field}, which no request of the protocol has: remove its row.");
            var cells = rest.Split('|');
            if (cells.Length < 2 || cells.Any(c => string.IsNullOrWhiteSpace(c)))
                problems.Add($"docs/protocol-fields.md: the row of {field} needs what the scheduler does and why, both filled in.");
        }

        foreach (var message in KeptAsSent.Keys)
        {
            if (P.OrchestratorServiceReflection.Descriptor.FindTypeByName<MessageDescriptor>(message) is null)
                problems.Add($"{nameof(KeptAsSent)} names the message {message}, which the protocol does not have: remove it.");
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
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
            // The values of an enum a worker announces itself with are fields of a kind too: a new capability must be
            // honoured or documented as well.
            if (field.FieldType == FieldType.Enum && field.EnumType.Name == nameof(P.WorkerCapability))
            {
                foreach (var value in field.EnumType.Values)
                {
                    if (value.Number != 0) fields.TryAdd(field.EnumType.Name + "." + value.Name, path + "." + field.Name);
                }
            }
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
