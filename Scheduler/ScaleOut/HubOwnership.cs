using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using DurableTask.Scheduler.Configuration;
using DurableTask.Scheduler.Diagnostics;
using DurableTask.Scheduler.Security;
using DurableTask.Scheduler.Storage;
using DurableTask.Scheduler.TaskHubs;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace DurableTask.Scheduler.ScaleOut;

/// <summary>Where calls for a task hub go: served here, forwarded to the owner, or nowhere yet.</summary>
public readonly record struct HubRoute(HubRouteKind Kind, HubLease? Owner)
{
    public static readonly HubRoute Local = new(HubRouteKind.Local, null);
    public static readonly HubRoute Unknown = new(HubRouteKind.Unknown, null);

    /// <summary>The owner's gRPC base address (first of its advertised endpoints).</summary>
    public string? GrpcUrl => Owner?.Endpoints.Split(' ')[0];

    /// <summary>The owner's HTTP base address (second of its advertised endpoints).</summary>
    public string? HttpUrl => Owner?.Endpoints.Split(' ') is [_, var http, ..] ? http : null;
}

public enum HubRouteKind
{
    Unknown,
    Local,
    Remote,
}

/// <summary>
/// Owns task hubs through fenced hub leases in the shared store (a replica's lease on a whole hub, not the lease of a
/// work item handed to a worker; "lease" below means the hub lease). Every <see cref="ScaleOutOptions.RenewInterval"/>
/// it renews the leases it holds, learns who owns the others, and takes free hubs (up to its fair share first, any
/// left free after that). A hub is loaded only after its lease is taken, and every commit is conditioned on the lease,
/// so a replica that lost its lease cannot write. A lease it cannot renew is given up (the hub stops here) before it
/// can expire in the store, so two replicas never serve one hub at once.
/// </summary>
public sealed class HubOwnership(
    TaskHubRegistry hubs,
    IStoreProvider stores,
    SchedulerOptions options,
    SchedulerReadiness readiness,
    IServer server,
    IHostApplicationLifetime lifetime,
    SchedulerTls tls,
    ILogger<HubOwnership> logger) : BackgroundService
{
    readonly IHubLeases? _leases = stores as IHubLeases;
    readonly ScaleOutOptions _scale = options.ScaleOut;
    readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.OrdinalIgnoreCase);
    readonly ConcurrentDictionary<string, HubLease> _owners = new(StringComparer.OrdinalIgnoreCase);
    readonly ConcurrentDictionary<string, int> _freeRounds = new(StringComparer.OrdinalIgnoreCase);
    readonly ConcurrentDictionary<string, byte> _requested = new(StringComparer.OrdinalIgnoreCase);

    static readonly TimeSpan ClaimInterval = TimeSpan.FromMilliseconds(200);
    readonly ConcurrentDictionary<string, long> _lastClaim = new(StringComparer.OrdinalIgnoreCase);

    // Hubs this replica is handing over (and when it gave them up): not taken back by a call's claim meanwhile.
    readonly ConcurrentDictionary<string, long> _handedOver = new(StringComparer.OrdinalIgnoreCase);
    readonly SemaphoreSlim _claims = new(1, 1);
    readonly SemaphoreSlim _nudge = new(0, 1);
    string _endpoints = "";
    volatile bool _healthy = true;
    volatile bool _started;

    sealed class Held(HubLease lease, long renewedAt)
    {
        public HubLease Lease { get; } = lease;

        /// <summary>Stopwatch timestamp taken before the last renewal (or the acquisition) was sent.</summary>
        public long RenewedAt { get; set; } = renewedAt;

        public Task? Opening { get; set; }
    }

    /// <summary>True when hubs are owned through hub leases (the store supports them).</summary>
    public bool Enabled => _leases is not null;

    public string ReplicaId { get; private set; } = options.ScaleOut.ReplicaId ?? DefaultReplicaId(options);

    /// <summary>False while the store of the hub leases cannot be reached.</summary>
    public bool Healthy => !Enabled || _healthy;

    /// <summary>The hubs this replica holds the hub lease of.</summary>
    public IReadOnlyCollection<string> OwnedHubs => _held.Keys.Order(StringComparer.OrdinalIgnoreCase).ToList();

    public HubRoute Route(string hub)
    {
        if (_held.ContainsKey(hub)) return HubRoute.Local;
        if (_owners.TryGetValue(hub, out var lease) && lease.ReplicaId != ReplicaId) return new HubRoute(HubRouteKind.Remote, lease);
        return HubRoute.Unknown;
    }

    /// <summary>True when <paramref name="hub"/> would be one dynamic hub more than <see cref="SchedulerOptions.MaxDynamicTaskHubs"/> allows.</summary>
    public bool AtDynamicHubLimit(string hub) =>
        options.UseDynamicTaskHubs
        && !options.TaskHubNames.Contains(hub, StringComparer.OrdinalIgnoreCase)
        && !_requested.ContainsKey(hub)
        && !_owners.ContainsKey(hub)
        && _requested.Count + _owners.Count >= options.TaskHubNames.Count + options.MaxDynamicTaskHubs;

    /// <summary>Finds or takes the owner of a hub now (a first call for it, or its owner seems gone).</summary>
    public async Task<HubRoute> ClaimAsync(string hub, CancellationToken cancellationToken)
    {
        if (_leases is null || !_started) return Route(hub);
        await _claims.WaitAsync(cancellationToken);
        try
        {
            var route = Route(hub);
            if (route.Kind == HubRouteKind.Local) return route;
            // Many calls waiting for one hub's new owner ask the store once per interval, not once each.
            if (_lastClaim.TryGetValue(hub, out long last) && Elapsed(last) < ClaimInterval) return route;
            _lastClaim[hub] = Stopwatch.GetTimestamp();
            _requested.TryAdd(hub, 0);
            // A hub just handed over goes to a replica with fewer hubs first (the next round settles it otherwise).
            bool take = !_handedOver.TryGetValue(hub, out long since) || Elapsed(since) > _scale.RenewInterval * 2;
            await ConsiderAsync(_leases, hub, take, cancellationToken);
            return Route(hub);
        }
        finally
        {
            _claims.Release();
        }
    }

    /// <summary>Waits until calls for <paramref name="hub"/> should go somewhere other than <paramref name="previous"/>.</summary>
    public async Task<HubRoute> WaitForNewRouteAsync(string hub, HubRoute previous, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var route = await ClaimAsync(hub, cancellationToken);
            bool moved = route.Kind == HubRouteKind.Local
                || (route.Kind == HubRouteKind.Remote && route.Owner!.Value != previous.Owner?.Value);
            if (moved || Stopwatch.GetTimestamp() > deadline) return route;
            await Task.Delay(250, cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_leases is null) return;
        // The advertised addresses are known once the server listens (ports may be chosen by the system).
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stoppingToken.Register(() => started.TrySetCanceled()))
        {
            try
            {
                await started.Task;
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        _endpoints = AdvertisedEndpoints();
        if (ReplicaId.Length == 0) ReplicaId = $"{Environment.MachineName}:{Guid.NewGuid():N}";
        hubs.HubFenced += OnFenced;
        _started = true;

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RoundAsync(_leases, stoppingToken);
                if (!_healthy) logger.LogInformation("Replica '{Replica}' reaches the store for its leases again.", ReplicaId);
                _healthy = true;
                if (!readiness.IsReady)
                {
                    // Ready once the hubs taken in the first round are loaded.
                    foreach (var held in _held.Values)
                    {
                        if (held.Opening is { } opening) await opening.WaitAsync(stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
                    }

                    readiness.MarkReady();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                if (_healthy) Logs.LeaseStoreUnavailable(logger, ReplicaId, ex);
                _healthy = false;
            }

            DropExpired();
            try
            {
                await _nudge.WaitAsync(_scale.RenewInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    async Task RoundAsync(IHubLeases leases, CancellationToken cancellationToken)
    {
        foreach (var (name, since) in _handedOver.ToArray())
        {
            if (Elapsed(since) > _scale.RenewInterval * 3) _handedOver.TryRemove(name, out _);
        }

        // Renew first: nothing else in the round matters as much.
        var renewals = _held.ToArray().Select(async entry =>
        {
            long sent = Stopwatch.GetTimestamp();
            bool kept = await leases.RenewAsync(entry.Key, entry.Value.Lease, _scale.LeaseDuration, cancellationToken);
            if (kept) entry.Value.RenewedAt = sent;
            else await LoseAsync(entry.Key, "another replica holds its lease now");
        }).ToList();
        await Task.WhenAll(renewals);

        // Alive: heard from within three rounds (a dead replica stops counting long before its leases expire).
        int replicas = await leases.HeartbeatAsync(ReplicaId, _scale.RenewInterval * 3, cancellationToken);
        LiveReplicas = replicas;
        var names = new HashSet<string>(options.TaskHubNames, StringComparer.OrdinalIgnoreCase);
        if (options.UseDynamicTaskHubs)
        {
            foreach (var stored in await stores.ListTaskHubsAsync(cancellationToken))
            {
                if (TaskHubRegistry.IsValidName(stored)) names.Add(stored);
            }
        }

        foreach (var name in _requested.Keys) names.Add(name);
        int fairShare = (names.Count + replicas - 1) / Math.Max(1, replicas);
        FairShare = fairShare;

        // More hubs than the fair share means another replica has fewer (when it joined later, say): hand one over per
        // round, so load spreads as replicas are added without moving many hubs at once.
        if (_held.Count > fairShare && replicas > 1 && _handedOver.IsEmpty)
        {
            string surplus = _held.Keys.Order(StringComparer.OrdinalIgnoreCase).Last();
            await HandOverAsync(leases, surplus, "this replica holds more than its share of the hubs", cancellationToken);
        }

        await _claims.WaitAsync(cancellationToken);
        try
        {
            foreach (var name in names.Order(StringComparer.OrdinalIgnoreCase))
            {
                if (_held.ContainsKey(name)) continue;
                // A free hub is taken at once while this replica has less than its share; otherwise only after it
                // stayed free for a round (its fairer owner had the chance first).
                bool take = (_held.Count < fairShare && !_handedOver.ContainsKey(name)) || _freeRounds.GetValueOrDefault(name) >= 1;
                await ConsiderAsync(leases, name, take, cancellationToken);
            }
        }
        finally
        {
            _claims.Release();
        }
    }

    /// <summary>Reads (and with <paramref name="take"/> takes) the lease of one hub not held here. Runs under <see cref="_claims"/>.</summary>
    async Task ConsiderAsync(IHubLeases leases, string name, bool take, CancellationToken cancellationToken)
    {
        if (_held.ContainsKey(name)) return;
        long sent = Stopwatch.GetTimestamp();
        var lease = await leases.TryAcquireAsync(name, ReplicaId, _endpoints, _scale.LeaseDuration, take, cancellationToken);
        if (lease is null)
        {
            _owners.TryRemove(name, out _);
            _freeRounds.AddOrUpdate(name, 1, (_, n) => n + 1);
            return;
        }

        _freeRounds.TryRemove(name, out _);
        if (lease.ReplicaId != ReplicaId)
        {
            _owners[name] = lease;
            return;
        }

        if (!take)
        {
            // Left by an earlier run of this replica: take it back (unless this replica is handing it over right now).
            if (!_handedOver.ContainsKey(name)) await ConsiderAsync(leases, name, take: true, cancellationToken);
            return;
        }

        _owners[name] = lease;
        var held = new Held(lease, sent);
        _held[name] = held;
        Logs.LeaseAcquired(logger, ReplicaId, name, lease.Fence);
        held.Opening = OpenAsync(leases, name, held);
    }

    async Task OpenAsync(IHubLeases leases, string name, Held held)
    {
        try
        {
            await hubs.OpenLeasedAsync(name, held.Lease, CancellationToken.None);
        }
        catch (Exception ex)
        {
            Logs.LeasedOpenFailed(logger, ReplicaId, name, ex);
            if (_held.TryRemove(new KeyValuePair<string, Held>(name, held)))
            {
                _owners.TryRemove(name, out _);
                await hubs.DropAsync(name, "it could not be loaded");
                try
                {
                    await leases.ReleaseAsync(name, held.Lease, CancellationToken.None);
                }
                catch (StoreUnavailableException)
                {
                    // It expires by itself.
                }
            }
        }
    }

    /// <summary>A lease that could not be renewed for longer than is safe is given up before it expires in the store.</summary>
    void DropExpired()
    {
        // Renewal must be confirmed within the lease duration less one renew interval: the margin covers the time a
        // renewal takes to arrive and clock-rate differences between this replica and the store.
        var limit = (long)((_scale.LeaseDuration - _scale.RenewInterval).TotalSeconds * Stopwatch.Frequency);
        foreach (var (name, held) in _held.ToArray())
        {
            if (Stopwatch.GetTimestamp() - held.RenewedAt > limit)
            {
                _ = LoseAsync(name, $"its lease could not be renewed for {_scale.LeaseDuration - _scale.RenewInterval:g}");
            }
        }
    }

    /// <summary>Gives a hub up cleanly: what is pending is committed, the hub stops here, then the lease is released.</summary>
    async Task HandOverAsync(IHubLeases leases, string name, string reason, CancellationToken cancellationToken)
    {
        if (!_held.TryGetValue(name, out var held)) return;
        _handedOver[name] = Stopwatch.GetTimestamp();
        _held.TryRemove(name, out _);
        _owners.TryRemove(name, out _);
        Logs.LeaseHandedOver(logger, ReplicaId, name, reason);
        await hubs.DropAsync(name, null);
        await leases.ReleaseAsync(name, held.Lease, cancellationToken);
    }

    static TimeSpan Elapsed(long since) => Stopwatch.GetElapsedTime(since);

    /// <summary>Replicas heard from recently, as of the last round.</summary>
    public int LiveReplicas { get; private set; }

    /// <summary>The number of hubs each replica should hold, as of the last round.</summary>
    public int FairShare { get; private set; }

    /// <summary>The hubs other replicas own, with the HTTP address of each owner.</summary>
    public IReadOnlyList<(string Hub, string HttpUrl)> RemoteHubs =>
        _owners.Where(e => e.Value.ReplicaId != ReplicaId && !_held.ContainsKey(e.Key))
            .Select(e => (e.Key, new HubRoute(HubRouteKind.Remote, e.Value).HttpUrl))
            .Where(e => e.HttpUrl is not null)
            .Select(e => (e.Key, e.HttpUrl!))
            .ToList();

    /// <summary>Owners known to this replica, by hub (this replica's own hubs included).</summary>
    public IReadOnlyDictionary<string, string> Owners =>
        _owners.ToDictionary(e => e.Key, e => e.Value.ReplicaId, StringComparer.OrdinalIgnoreCase);

    async Task LoseAsync(string name, string reason)
    {
        if (!_held.TryRemove(name, out _)) return;
        _owners.TryRemove(name, out _);
        Logs.LeaseLost(logger, ReplicaId, name, reason);
        await hubs.DropAsync(name, reason);
    }

    void OnFenced(string name)
    {
        if (!_held.TryRemove(name, out _)) return;
        _owners.TryRemove(name, out _);
        Logs.LeaseLost(logger, ReplicaId, name, "a commit was refused by the store's fence");
        _ = hubs.DropAsync(name, "its lease is held by another replica");
        if (_nudge.CurrentCount == 0)
        {
            try
            {
                _nudge.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_leases is null) return;
        hubs.HubFenced -= OnFenced;

        // Hand the hubs over at once: commit what is pending, then give the leases up.
        foreach (var (name, held) in _held.ToArray())
        {
            _held.TryRemove(name, out _);
            try
            {
                await hubs.DropAsync(name, null);
                await _leases.ReleaseAsync(name, held.Lease, cancellationToken);
            }
            catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException)
            {
                // The lease expires by itself.
            }
        }
    }

    string AdvertisedEndpoints()
    {
        string host = _scale.AdvertisedHost ?? DefaultHost(options.BindAddress);
        string scheme = tls.Certificate is null ? "http" : "https";
        int grpcPort = options.GrpcPort, httpPort = options.HttpPort;
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var ports = addresses.Select(a => Uri.TryCreate(a.Replace("://+", "://localhost").Replace("://*", "://localhost"), UriKind.Absolute, out var u) ? u.Port : 0)
            .Where(p => p > 0).ToList();
        // Ports chosen by the system (0): the listener order is gRPC, then HTTP.
        if (grpcPort == 0 && ports.Count > 0) grpcPort = ports[0];
        if (httpPort == 0 && ports.Count > 1) httpPort = ports[1];
        if (host.Contains(':') && !host.StartsWith('[')) host = $"[{host}]";
        return $"{scheme}://{host}:{grpcPort} {scheme}://{host}:{httpPort}";
    }

    static string DefaultHost(string bindAddress)
    {
        if (string.Equals(bindAddress, "localhost", StringComparison.OrdinalIgnoreCase)) return "127.0.0.1";
        if (bindAddress is not ("*" or "0.0.0.0" or "+")) return bindAddress;
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback) continue;
            foreach (var address in nic.GetIPProperties().UnicastAddresses)
            {
                if (address.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address.Address))
                    return address.Address.ToString();
            }
        }

        return Dns.GetHostName();
    }

    static string DefaultReplicaId(SchedulerOptions options) =>
        options.GrpcPort == 0 ? "" : $"{Environment.MachineName}:{options.GrpcPort}";
}
