using Google.Protobuf;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Microsoft.DurableTask.Protobuf;

namespace DurableTask.Scheduler.Orchestration;

/// <summary>
/// The state of one orchestration instance: its current execution's committed history, its inbox of messages not yet
/// processed, and the summary that queries read; what <see cref="OrchestrationStateMachine"/> reads and changes. How a
/// task hub dispatches, stores and keeps it in memory lives in a derived class of the hub's. Not thread-safe: guarded
/// by whoever owns it.
/// </summary>
public class InstanceState
{
    public InstanceState(string instanceId) => InstanceId = instanceId;

    public string InstanceId { get; }
    public string Name { get; set; } = "";

    public string? Version
    {
        get => _rare?.Version;
        set { if (value is not null || _rare is not null) Rare.Version = value; }
    }

    /// <summary>
    /// The execution id. One the scheduler made (a GUID in its 32-digit form) is kept as the GUID, with its text
    /// while the instance runs (work items carry it) and formatted again on reads once it has finished.
    /// </summary>
    public string ExecutionId
    {
        get => _executionIdText ?? (_executionGuid == Guid.Empty ? "" : _executionGuid.ToString("N"));
        set
        {
            _executionIdText = value;
            _executionGuid = value.Length == 32 && !value.AsSpan().ContainsAnyExcept(LowerHex)
                && Guid.TryParseExact(value, "N", out var guid) ? guid : Guid.Empty;
        }
    }

    string? _executionIdText;
    Guid _executionGuid;
    static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>A finished instance keeps an execution id that is a GUID as the GUID only.</summary>
    void ForgetExecutionIdText()
    {
        if (_executionGuid != Guid.Empty) _executionIdText = null;
    }

    OrchestrationStatus _status = OrchestrationStatus.Pending;

    public OrchestrationStatus Status
    {
        get => _status;
        set
        {
            var old = _status;
            _status = value;
            StatusChanged(old, value);
        }
    }

    /// <summary>Called after every assignment of <see cref="Status"/> (also of the same value).</summary>
    protected virtual void StatusChanged(OrchestrationStatus from, OrchestrationStatus to)
    {
    }
    public DateTime CreatedAt { get; set; }
    public DateTime LastUpdatedAt { get; set; }

    DateTime _completedAt;

    public DateTime? CompletedAt
    {
        get => _completedAt == default ? null : _completedAt;
        set => _completedAt = value ?? default;
    }

    public DateTime? ScheduledStartAt
    {
        get => _rare is { ScheduledStartAt: var at } && at != default ? at : null;
        set { if (value is not null || _rare is not null) Rare.ScheduledStartAt = value ?? default; }
    }

    string? _input;

    public string? Input
    {
        get => _input;
        set
        {
            _input = value;
            InputChanged();
        }
    }

    /// <summary>Called after every assignment of <see cref="Input"/>.</summary>
    protected virtual void InputChanged()
    {
    }

    /// <summary>The output is kept as UTF-8 (about half the size of a string for JSON); a read decodes it.</summary>
    byte[]? _output;

    public string? Output
    {
        get => Utf8Text.Decode(_output);
        set => _output = Utf8Text.Encode(value);
    }

    public string? CustomStatus
    {
        get => _rare?.CustomStatus;
        set { if (value is not null || _rare is not null) Rare.CustomStatus = value; }
    }

    public TaskFailureDetails? Failure
    {
        get => _rare?.Failure;
        set { if (value is not null || _rare is not null) Rare.Failure = value; }
    }

    public MapField<string, string>? Tags
    {
        get => _rare?.Tags;
        set { if (value is not null || _rare is not null) Rare.Tags = value; }
    }

    public string? ParentInstanceId
    {
        get => _rare?.ParentInstanceId;
        set { if (value is not null || _rare is not null) Rare.ParentInstanceId = value; }
    }

    /// <summary>
    /// What most instances never set (a version, tags, a parent, a custom status, a failure, a scheduled start, a
    /// replay or a hold): one object for all of it, created when the first of them is set, so that the many plain
    /// instances a hub keeps in memory do not each carry these fields.
    /// </summary>
    sealed class RareState
    {
        public string? Version;
        public string? CustomStatus;
        public TaskFailureDetails? Failure;
        public MapField<string, string>? Tags;
        public string? ParentInstanceId;
        public DateTime ScheduledStartAt;
        public HistoryEvent? DeferredStart;
        public bool ReplayRequested;
        public DateTime HeldUntil;
    }

    RareState? _rare;

    RareState Rare => _rare ??= new RareState();

    /// <summary>The committed history, encoded: what the instance keeps (see <see cref="EncodedHistory"/>).</summary>
    EncodedHistory _encoded = new();

    /// <summary>The same history as messages, while someone asked for it; the source of the bytes until they catch up.</summary>
    List<HistoryEvent>? _history;

    /// <summary>
    /// Committed history of the current execution, oldest first, as messages: decoded on first use and kept until
    /// <see cref="ReleaseHistory"/>. Events are never mutated once appended. A new list replaces the history
    /// (continue-as-new, rewind); events added to the list are encoded when the bytes are next read.
    /// </summary>
    public List<HistoryEvent> History
    {
        get => _history ??= _encoded.Decode();
        set
        {
            _history = value;
            _encoded = new EncodedHistory();
        }
    }

    /// <summary><see cref="History"/> in wire form, for work items and the store.</summary>
    public EncodedHistory Encoded
    {
        get
        {
            if (_history is { } list && list.Count != _encoded.Count)
            {
                if (list.Count < _encoded.Count) _encoded = new EncodedHistory();
                for (int i = _encoded.Count; i < list.Count; i++) _encoded.Append(list[i]);
            }

            return _encoded;
        }
    }

    /// <summary>Number of events in <see cref="History"/>, without decoding it.</summary>
    public int HistoryCount => _history?.Count ?? _encoded.Count;

    /// <summary>Appends a committed event (encoded now, once).</summary>
    public void AppendHistory(HistoryEvent e)
    {
        if (_history is not null)
        {
            _history.Add(e);
            _ = Encoded;
        }
        else
        {
            _encoded.Append(e);
        }
    }

    /// <summary>Appends <paramref name="e"/>, given its encoding as well: the bytes are copied instead of encoding it again.</summary>
    public void AppendHistory(HistoryEvent e, ReadOnlySpan<byte> encoded)
    {
        if (_history is not null)
        {
            _history.Add(e);
            _ = Encoded;
        }
        else
        {
            _encoded.Append(e, encoded);
        }
    }

    /// <summary>
    /// Space for one more committed event of <paramref name="size"/> bytes, which the caller writes at once (see
    /// <see cref="EventWire"/>). A history held as messages is released first: it goes on as bytes.
    /// </summary>
    public Span<byte> AppendEncoded(int size)
    {
        ReleaseHistory();
        return _encoded.AppendEncoded(size);
    }

    /// <summary>Drops the decoded messages; the history lives on as bytes.</summary>
    public void ReleaseHistory()
    {
        if (_history is null) return;
        _ = Encoded;
        _history = null;
    }

    /// <summary>A copy of the history that leaves an encoded history encoded.</summary>
    public List<HistoryEvent> CopyHistory() => _history is not null ? new List<HistoryEvent>(_history) : _encoded.Decode();

    /// <summary>For a finished instance: the history stays as compact bytes only, and the execution id as a GUID.</summary>
    public void PackHistory()
    {
        ReleaseHistory();
        _encoded.Compact();
        ForgetExecutionIdText();
    }

    List<HistoryEvent>? _inbox;

    /// <summary>Messages delivered but not yet processed by an episode, in arrival order (created on first use).</summary>
    public List<HistoryEvent> Inbox => _inbox ??= new();

    /// <summary>Number of messages in <see cref="Inbox"/>, without creating it.</summary>
    public int InboxCount => _inbox?.Count ?? 0;

    /// <summary>For a finished instance: no more messages are processed, so the inbox goes (a new one if one comes).</summary>
    public void DropInbox() => _inbox = null;

    /// <summary>Dispatch even with an empty inbox (after a rewind replaced the history).</summary>
    public bool ReplayRequested
    {
        get => _rare?.ReplayRequested ?? false;
        set { if (value || _rare is not null) Rare.ReplayRequested = value; }
    }

    /// <summary>Activities this execution scheduled whose result has not been delivered yet.</summary>
    public int OpenActivities { get; set; }

    /// <summary>
    /// A large history's next episode waits until then for more activity results (see OrchestrationStateMachine.HoldForResults);
    /// default when not held.
    /// </summary>
    public DateTime HeldUntil
    {
        get => _rare?.HeldUntil ?? default;
        set { if (value != default || _rare is not null) Rare.HeldUntil = value; }
    }

    /// <summary>Set when the ExecutionStarted message waits for a scheduled start time.</summary>
    public HistoryEvent? DeferredStart
    {
        get => _rare?.DeferredStart;
        set { if (value is not null || _rare is not null) Rare.DeferredStart = value; }
    }

    /// <summary>The W3C trace context of whoever started the instance (stored in its start event).</summary>
    public TraceContext? ParentTraceContext => StartEvent?.ParentTraceContext;

    /// <summary>Trace context echoed from the last orchestrator response.</summary>
    public OrchestrationTraceContext? TraceContext { get; set; }

    /// <summary>Bumped whenever <see cref="History"/> is replaced (continue-as-new, rewind).</summary>
    public int HistoryGeneration { get; set; }

    public bool IsTerminal => Statuses.IsTerminal(Status);

    public bool HasStarted => HistoryCount > 0;

    public ExecutionStartedEvent? StartEvent
    {
        get
        {
            var encoded = Encoded;
            if (encoded.Start is { } started) return started;
            if (encoded.Count > 0)
            {
                // A compacted history forgot its start: decoding finds it again (without keeping the messages).
                foreach (var e in _history ?? encoded.Decode())
                {
                    if (e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionStarted) return e.ExecutionStarted;
                }
            }

            foreach (var e in _inbox ?? [])
            {
                if (e.EventTypeCase == HistoryEvent.EventTypeOneofCase.ExecutionStarted) return e.ExecutionStarted;
            }

            return DeferredStart?.ExecutionStarted;
        }
    }

    public OrchestrationState ToState(bool includePayloads)
    {
        var state = new OrchestrationState
        {
            InstanceId = InstanceId,
            Name = Name,
            OrchestrationStatus = Status,
            CreatedTimestamp = Timestamp.FromDateTime(CreatedAt),
            LastUpdatedTimestamp = Timestamp.FromDateTime(LastUpdatedAt),
            ExecutionId = ExecutionId,
        };
        if (Version is not null) state.Version = Version;
        if (CompletedAt is { } completed) state.CompletedTimestamp = Timestamp.FromDateTime(completed);
        if (ScheduledStartAt is { } scheduled) state.ScheduledStartTimestamp = Timestamp.FromDateTime(scheduled);
        if (ParentInstanceId is not null) state.ParentInstanceId = ParentInstanceId;
        if (Tags is not null) state.Tags.Add(Tags);
        if (Failure is not null) state.FailureDetails = Failure;
        if (includePayloads)
        {
            if (Input is not null) state.Input = Input;
            if (Output is not null) state.Output = Output;
            if (CustomStatus is not null) state.CustomStatus = CustomStatus;
        }

        return state;
    }
}
