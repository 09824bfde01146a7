namespace PgNotify;

/// <summary>Names under which PgNotify reports itself, for those who collect its metrics.</summary>
public static class PgNotifyDiagnostics
{
    /// <summary>
    /// The name of the <see cref="System.Diagnostics.Metrics.Meter"/> every PgNotify package reports through
    /// (<c>PgNotify</c>): listen to it with <c>dotnet-counters monitor --counters PgNotify</c> or OpenTelemetry's
    /// <c>AddMeter("PgNotify")</c>. docs/observability.md lists its instruments.
    /// </summary>
    public const string MeterName = "PgNotify";
}
