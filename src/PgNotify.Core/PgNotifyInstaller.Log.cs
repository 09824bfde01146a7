using Microsoft.Extensions.Logging;

namespace PgNotify;

public sealed partial class PgNotifyInstaller
{
    private static partial class Log
    {
        [LoggerMessage(EventId = 1301, Level = LogLevel.Warning,
            Message = "PgNotify keeps excluding column(s) {Extra} of table {Table}, which this instance is not configured to exclude: another instance or an operator excluded them, and exclusions only widen. The table's excluded columns are: {Effective}. Add them to PgNotify:ExcludedColumns to silence this; to send them again, remove them explicitly with PgNotifyInstaller.RemoveExcludedColumnsAsync or sql/remove_excluded_columns.sql.")]
        public static partial void ExclusionsWider(ILogger logger, string table, string extra, string effective);
    }
}
