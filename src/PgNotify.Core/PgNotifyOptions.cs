namespace PgNotify;

/// <summary>
/// Settings of the PostgreSQL side of PgNotify, bound from the configuration section <c>PgNotify</c>.
/// </summary>
public sealed class PgNotifyOptions
{
    /// <summary>The configuration section the options bind from: <c>PgNotify</c>.</summary>
    public const string SectionName = "PgNotify";

    /// <summary>
    /// The PostgreSQL connection string. Default: <see langword="null"/>, which means the connection string named
    /// <see cref="ConnectionStringName"/> (<c>ConnectionStrings:Postgres</c>).
    /// </summary>
    /// <remarks>
    /// The listener must reach PostgreSQL directly or through a pooler in <em>session</em> mode: LISTEN does not work
    /// through pgbouncer's transaction pooling. PgNotify builds its own data sources from this string and forces
    /// <c>Pooling=false</c>, <c>Multiplexing=false</c>, <c>Enlist=false</c> and a keepalive on the listening connection,
    /// so it never shares (or clears) the application's own pool.
    /// </remarks>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// The name looked up under <c>ConnectionStrings</c> when <see cref="ConnectionString"/> is not set.
    /// Default: <c>Postgres</c>.
    /// </summary>
    public string ConnectionStringName { get; set; } = "Postgres";

    /// <summary>The NOTIFY channel the triggers send on and the listener listens to. Default: <c>db_changes</c>.</summary>
    public string Channel { get; set; } = "db_changes";

    /// <summary>
    /// The tables whose changes are streamed, as <c>name</c> (schema <c>public</c>) or <c>schema.name</c>; names are
    /// exact and case-sensitive. Default: empty. With <see cref="InstallTriggers"/> on, each must exist at startup.
    /// </summary>
    public IList<string> Tables { get; } = [];

    /// <summary>
    /// Columns never sent, per table (key: the table as written in <see cref="Tables"/>): the trigger removes them before
    /// the row leaves the database, so a <c>password_hash</c> never reaches any listener. Default: none.
    /// </summary>
    public IDictionary<string, string[]> ExcludedColumns { get; } = new Dictionary<string, string[]>(StringComparer.Ordinal);

    /// <summary>
    /// Whether the listener installs the <c>pgnotify</c> schema and enables the triggers of <see cref="Tables"/> at
    /// startup (idempotent and safe with several instances). Turn off when the SQL in <c>sql/</c> is run by hand or
    /// by migrations. Default: <see langword="true"/>.
    /// </summary>
    public bool InstallTriggers { get; set; } = true;

    /// <summary>
    /// Lossless delivery: the triggers write every change to <c>pgnotify.change_log</c> in the writer's transaction and
    /// NOTIFY only wakes the listener, which reads the log in position order. No change is lost across listener
    /// reconnects or database restarts, every change carries a <see cref="PgChange.Position"/>, and WebSocket clients can
    /// resume from the last position they saw. Costs one extra row insert per change (see docs/lossless.md).
    /// Default: <see langword="false"/> (changes travel in NOTIFY; a reconnect is reported as a <see cref="PgChangeGap"/>).
    /// </summary>
    public bool LosslessDelivery { get; set; }

    /// <summary>
    /// How long changes stay in <c>pgnotify.change_log</c> for resuming clients. Default: 24 hours. With
    /// <see cref="InstallTriggers"/> on, it is also stored in <c>pgnotify.settings</c>, where the trigger enforces it
    /// even when no app instance runs.
    /// </summary>
    public TimeSpan ChangeLogRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// The most changes <c>pgnotify.change_log</c> keeps, whatever their age, counted in positions below the newest
    /// (enforced at each <see cref="MaintenanceInterval"/>, and, with <see cref="InstallTriggers"/> on, by the trigger
    /// itself through <c>pgnotify.settings</c>, within 1,000 rows). Default: 1,000,000 changes.
    /// </summary>
    public long ChangeLogMaxRows { get; set; } = 1_000_000;

    /// <summary>
    /// How often the listener reads the change log when no notification woke it (it also reads on every wake-up).
    /// Default: 1 second.
    /// </summary>
    public TimeSpan ChangeLogPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many changes each in-process consumer may have waiting before further changes are dropped for that
    /// consumer alone (it then receives a <see cref="PgChangeGap"/> with the count). Default: 10,000 changes.
    /// </summary>
    public int ConsumerCapacity { get; set; } = 10_000;

    /// <summary>
    /// How many notifications the listener may hold before they are parsed and dispatched. The notification handler
    /// never blocks PostgreSQL's read loop: beyond this it drops and reports a gap. Default: 100,000 notifications.
    /// </summary>
    public int InboxCapacity { get; set; } = 100_000;

    /// <summary>The first reconnect delay's upper bound (full jitter, doubling per attempt). Default: 500 milliseconds.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The cap on the reconnect delay. Default: 30 seconds.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the listener probes its connection with a query (on a fixed schedule, traffic or not), so a dead or
    /// half-open connection is found within <see cref="HealthCheckInterval"/> + <see cref="HealthCheckTimeout"/>; the
    /// probe also reads <c>pg_notification_queue_usage()</c>. Default: 5 seconds.
    /// </summary>
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the probe may take before the connection is declared dead. Whole seconds. Default: 5 seconds.</summary>
    public TimeSpan HealthCheckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long rows too large for NOTIFY stay in <c>pgnotify.large_payload</c> for listeners to fetch before they are
    /// pruned. Must exceed the longest time a listener may lag. Default: 1 hour. With <see cref="InstallTriggers"/> on,
    /// it is also stored in <c>pgnotify.settings</c>, where the trigger enforces it even when no app instance runs.
    /// </summary>
    public TimeSpan LargePayloadRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// With lossless delivery: how many replay reads of <c>pgnotify.change_log</c> (for WebSocket clients resuming with
    /// <c>since</c>) may run at once. A replay holds a slot only while it reads one batch of 1,000 changes, so a slow
    /// client never keeps one; further replays wait for a slot (until their own cancellation), they do not fail.
    /// PgNotify's side connection pool is sized to this plus 3, so replays never starve the listener's own queries.
    /// Default: 2.
    /// </summary>
    public int MaxConcurrentReplays { get; set; } = 2;

    /// <summary>
    /// How many table snapshots (<see cref="IPgTableSnapshots"/>; WebSocket <c>subscribe</c> requests with
    /// <c>"snapshot": true</c>) may read at once. Snapshots have a connection pool of their own of this size
    /// (application name <c>PgNotify snapshots</c>), apart from the listener's connection and the side pool, so a flood of
    /// snapshot requests waits for slots and never slows change delivery. Each running snapshot holds one read-only
    /// REPEATABLE READ transaction for as long as it reads (which, like any long transaction, holds back vacuum).
    /// Default: 4.
    /// </summary>
    public int MaxConcurrentSnapshots { get; set; } = 4;

    /// <summary>
    /// With lossless delivery: the most holes (log positions taken by transactions still running, or rolled back) the
    /// reader waits for at once. Past it, the oldest are given up and consumers receive a gap. Internal: tests lower it.
    /// </summary>
    internal int MaxChangeLogHoles { get; set; } = 100_000;

    /// <summary>
    /// Where changes come from: <see cref="PgChangeSourceKind.Notify"/> (triggers and NOTIFY, the default) or
    /// <see cref="PgChangeSourceKind.Replication"/> (logical replication: no trigger, no NOTIFY lock, lossless by
    /// construction). With Replication, <see cref="LosslessDelivery"/> is always on: changes carry positions and
    /// clients can resume. Every instance must use the same source. See docs/replication.md.
    /// </summary>
    public PgChangeSourceKind Source { get; set; } = PgChangeSourceKind.Notify;

    /// <summary>
    /// With <see cref="PgChangeSourceKind.Replication"/>: this instance's stable name, which names its replication slot
    /// (<c>pgnotify_</c> + the name, lowercased, other characters as <c>_</c>). Give each instance its own, and the same one
    /// after a restart, so it resumes from its slot. Default: <see langword="null"/>, the machine name.
    /// </summary>
    public string? InstanceName { get; set; }

    /// <summary>
    /// With <see cref="PgChangeSourceKind.Replication"/>: how long another instance's PgNotify slot may stay unused before
    /// this instance drops it, so a dead instance's slot does not keep WAL forever (also cap it with PostgreSQL's
    /// <c>max_slot_wal_keep_size</c>). Default: 1 hour.
    /// </summary>
    public TimeSpan ReplicationSlotIdleTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// With <see cref="PgChangeSourceKind.Replication"/>: how many delivered changes each instance keeps in memory for
    /// clients that resume (<c>since</c>); an older position gets <c>position_expired</c>. Default: 100,000 changes.
    /// </summary>
    public int ReplicationHistorySize { get; set; } = 100_000;

    /// <summary>How often the listener prunes <c>pgnotify.large_payload</c> and <c>pgnotify.change_log</c>. Default: 5 minutes.</summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// <see cref="ExcludedColumns"/> by table, not by spelling ("profiles" and "public.profiles" are one table): what the
    /// trigger is given, what the replication source strips and what its snapshots leave out.
    /// </summary>
    internal Dictionary<PgTableName, string[]> ExcludedColumnsByTable() =>
        ExcludedColumns.ToDictionary(e => PgTableName.Parse(e.Key), e => e.Value);
}
