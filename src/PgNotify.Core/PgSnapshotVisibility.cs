using System.Globalization;

namespace PgNotify;

/// <summary>
/// Which transactions a PostgreSQL snapshot sees (<c>pg_current_snapshot()</c>: <c>xmin:xmax:xip_list</c>), so that a
/// change can be tested against rows read in that snapshot: a change whose <see cref="PgChange.TransactionId"/> the
/// snapshot includes is already in those rows. Immutable; safe to read from any thread.
/// </summary>
/// <remarks>
/// Transaction ids are PostgreSQL's 64-bit <c>xid8</c> values (<c>pg_current_xact_id()</c>), which never wrap. A
/// transaction below <see cref="Xmin"/> had ended when the snapshot was taken, one at or above <see cref="Xmax"/> had not
/// started, and the ones in <see cref="InProgress"/> were running; every other one had ended. Changes only reach
/// listeners from committed transactions, so "ended" means "committed" for them.
/// </remarks>
public sealed class PgSnapshotVisibility
{
    private readonly HashSet<long> _inProgress;

    /// <summary>Creates the visibility of a snapshot from its parts.</summary>
    /// <param name="xmin">The oldest transaction still running when the snapshot was taken.</param>
    /// <param name="xmax">One past the newest transaction that had ended.</param>
    /// <param name="inProgress">The transactions between the two that were still running.</param>
    public PgSnapshotVisibility(long xmin, long xmax, IEnumerable<long> inProgress)
    {
        ArgumentNullException.ThrowIfNull(inProgress);
        if (xmin < 0 || xmax < xmin)
        {
            throw new ArgumentOutOfRangeException(nameof(xmax), $"A snapshot needs 0 <= xmin <= xmax (got {xmin}:{xmax}).");
        }

        Xmin = xmin;
        Xmax = xmax;
        _inProgress = [.. inProgress];
    }

    /// <summary>The oldest transaction still running when the snapshot was taken: every transaction below it had ended.</summary>
    public long Xmin { get; }

    /// <summary>One past the newest transaction that had ended: no transaction at or above it is seen.</summary>
    public long Xmax { get; }

    /// <summary>The transactions at or above <see cref="Xmin"/> and below <see cref="Xmax"/> that were still running.</summary>
    public IReadOnlyCollection<long> InProgress => _inProgress;

    /// <summary>
    /// True when the snapshot sees the work of transaction <paramref name="transactionId"/>: for a committed change, its
    /// row state is already in the rows read in the snapshot.
    /// </summary>
    /// <param name="transactionId">A 64-bit transaction id (<see cref="PgChange.TransactionId"/>).</param>
    /// <returns>Whether the snapshot includes the transaction.</returns>
    public bool Includes(long transactionId) =>
        transactionId < Xmin || (transactionId < Xmax && !_inProgress.Contains(transactionId));

    /// <summary>Reads PostgreSQL's text form <c>xmin:xmax:xip,xip,...</c> (the <c>pg_snapshot</c> type).</summary>
    /// <param name="text">The text, e.g. <c>750:760:752,755</c>.</param>
    /// <returns>The visibility.</returns>
    /// <exception cref="FormatException">The text is not a snapshot.</exception>
    public static PgSnapshotVisibility Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(':');
        if (parts.Length != 3 || !TryReadXid(parts[0], out var xmin) || !TryReadXid(parts[1], out var xmax) || xmax < xmin)
        {
            throw new FormatException($"'{(text.Length > 64 ? text[..64] + "…" : text)}' is not a snapshot (xmin:xmax:xip_list).");
        }

        var inProgress = new List<long>();
        if (parts[2].Length > 0)
        {
            foreach (var item in parts[2].Split(','))
            {
                if (!TryReadXid(item, out var xid) || xid < xmin || xid >= xmax)
                {
                    throw new FormatException($"'{(text.Length > 64 ? text[..64] + "…" : text)}' is not a snapshot: its xip_list holds '{item}'.");
                }

                inProgress.Add(xid);
            }
        }

        return new PgSnapshotVisibility(xmin, xmax, inProgress);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Xmin}:{Xmax}:{string.Join(',', _inProgress.Order())}";

    private static bool TryReadXid(string text, out long value) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
