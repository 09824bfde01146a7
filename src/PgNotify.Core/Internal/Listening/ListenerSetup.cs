using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// What the listener checks and prepares before it listens: it refuses a transaction-mode pooler, installs the SQL
/// and enables the tables (with <see cref="PgNotifyOptions.InstallTriggers"/>), or checks a setup someone else made.
/// Runs on the host's start and on the connect loop.
/// </summary>
internal sealed class ListenerSetup(
    IOptions<PgNotifyOptions> options,
    PgNotifyConnections connections,
    PgNotifyInstaller installer,
    ReplicationSetup replication,
    LoopSupervisor supervisor,
    ILogger<PgNotifyListener> logger)
{
    internal const string TransactionPoolerMessage =
        "PgNotify's LISTEN connection runs through a connection pooler in transaction mode (for example pgbouncer with " +
        "pool_mode = transaction): its statements run on different server connections, so LISTEN cannot work and " +
        "notifications would be lost. Point PgNotify's connection string directly at PostgreSQL, or at a pooler in session mode.";

    /// <summary>The health problem key of an unreadable <c>pgnotify.large_payload</c>.</summary>
    internal const string LargePayloadProblem = "fetch:large_payload";

    private const string SetupProblemPrefix = "setup:";

    private readonly PgNotifyOptions _options = options.Value;

    /// <summary>Whether the SQL and the tables were installed by this process.</summary>
    public bool Installed { get; private set; }

    /// <summary>
    /// Fails the start when the connection string leads to a transaction-mode pooler (see <see cref="TransactionPoolerMessage"/>).
    /// Directly or through session pooling, a connection keeps its server backend, and a second connection gets another.
    /// Through transaction pooling, a connection's statements may run on different backends, and an idle connection's
    /// backend is handed to the next client: either shows.
    /// </summary>
    public async Task RefuseTransactionPoolerAsync(CancellationToken cancellationToken)
    {
        var first = await connections.Listener.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (first.ConfigureAwait(false))
        {
            var backend = await BackendPidAsync(first, cancellationToken).ConfigureAwait(false);
            var second = await connections.Listener.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (second.ConfigureAwait(false))
            {
                var other = await BackendPidAsync(second, cancellationToken).ConfigureAwait(false);
                var again = await BackendPidAsync(first, cancellationToken).ConfigureAwait(false);
                if (other == backend || again != backend)
                {
                    throw new InvalidOperationException(TransactionPoolerMessage);
                }
            }
        }
    }

    /// <summary>
    /// With the replication source, fails the start with a message naming the fix when the server cannot stream
    /// (wal_level, REPLICATION privilege, no free slot) or, for a setup made by hand, a table cannot (replica identity,
    /// publication). Nothing for the trigger source.
    /// </summary>
    public async Task CheckSourceAsync(CancellationToken cancellationToken)
    {
        if (_options.Source == PgChangeSourceKind.Replication)
        {
            await replication.CheckServerAsync(cancellationToken).ConfigureAwait(false);
            if (!_options.InstallTriggers)
            {
                await replication.CheckTablesAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Installs the SQL, sets the retention and enables the configured tables, with the registered installer.</summary>
    public async Task InstallAsync(CancellationToken cancellationToken)
    {
        if (_options.Source == PgChangeSourceKind.Replication)
        {
            await replication.InstallAsync(cancellationToken).ConfigureAwait(false); // publication and replica identity, no triggers
            Installed = true;
            PgNotifyLog.Installed(logger, _options.Tables.Count, string.Join(", ", _options.Tables));
            return;
        }

        await installer.InstallAsync(cancellationToken).ConfigureAwait(false);
        await installer.SetRetentionAsync(
            _options.ChangeLogRetention, _options.ChangeLogMaxRows, _options.LargePayloadRetention, cancellationToken).ConfigureAwait(false);
        var exclusions = _options.ExcludedColumnsByTable();
        foreach (var text in _options.Tables)
        {
            var table = PgTableName.Parse(text);
            exclusions.TryGetValue(table, out var excluded);
            try
            {
                await installer.EnableTableAsync(table, _options.Channel, excluded, _options.LosslessDelivery, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn)
            {
                throw new InvalidOperationException(
                    $"PgNotify cannot watch '{text}': {ex.MessageText}. Create it, or fix PgNotify:Tables / PgNotify:ExcludedColumns.", ex);
            }
        }

        Installed = true;
        PgNotifyLog.Installed(logger, _options.Tables.Count, string.Join(", ", _options.Tables));
    }

    /// <summary>Checks a setup someone else made; each problem goes to health, and is logged once while it lasts.</summary>
    public async Task CheckSetupAsync(CancellationToken stoppingToken)
    {
        var status = supervisor.Status;
        if (_options.Source == PgChangeSourceKind.Replication)
        {
            string? problem = null;
            try
            {
                await replication.CheckTablesAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException ex)
            {
                problem = ex.Message;
                PgNotifyLog.SetupProblem(logger, problem);
            }

            status.SetProblem(SetupProblemPrefix + "replication", problem);
            return;
        }

        var problems = await SetupCheck.RunAsync(connections.Side, _options, stoppingToken).ConfigureAwait(false);
        var known = status.Problems.ToHashSet(StringComparer.Ordinal);
        status.ClearProblems(SetupProblemPrefix);
        if (!problems.Any(p => p.Contains("pgnotify.large_payload", StringComparison.Ordinal)))
        {
            status.SetProblem(LargePayloadProblem, null);
        }

        for (var i = 0; i < problems.Count; i++)
        {
            status.SetProblem(SetupProblemPrefix + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture), problems[i]);
            if (!known.Contains(problems[i]))
            {
                PgNotifyLog.SetupProblem(logger, problems[i]); // once per problem, not on every reconnect while it lasts
            }
        }
    }

    /// <summary>The role PgNotify's side connections log in as, or <see langword="null"/>.</summary>
    public string? RoleName()
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(connections.Side.ConnectionString).Username;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    public static async Task<int> BackendPidAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public static bool IsTransient(Exception ex) => ex switch
    {
        PostgresException pg => pg.IsTransient,
        NpgsqlException => true,
        TimeoutException => true,
        System.Net.Sockets.SocketException => true,
        IOException => true,
        _ => false,
    };

    public static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
