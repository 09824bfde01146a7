using System.Globalization;
using System.Text;

namespace PgNotify.Bench;

/// <summary>The printed table; every figure of a mode is also given as a ratio to the baseline and the floor of the same run.</summary>
internal static class Report
{
    public static string Line(RunResult r, IReadOnlyList<RunResult> all)
    {
        if (r.Error is not null)
        {
            return "error: " + r.Error;
        }

        if (r.RssPerIdleSocketBytes != 0 || r.Deliveries == 0 && r.Expected == 0)
        {
            return F($"RSS {r.ServerRssBeforeBytes / 1048576.0:F1} -> {r.ServerRssAfterBytes / 1048576.0:F1} MB, {r.RssPerIdleSocketBytes / 1024:F2} KB RSS/socket, {r.HeapPerIdleSocketBytes / 1024:F2} KB GC heap/socket, connect {r.ConnectSeconds:F1} s");
        }

        return F($"rows {r.RowsCommitted} ({r.RowsPerSecond:F0}/s), deliveries {r.Deliveries}/{r.Expected} missing {r.Missing} dup {r.Duplicates} resync {r.Resyncs}, ") +
               F($"p50 {r.P50Ms:F2} p90 {r.P90Ms:F2} p99 {r.P99Ms:F2} p999 {r.P999Ms:F2} max {r.MaxMs:F2} ms, {r.DeliveriesPerSecond:F0} deliv/s, ") +
               F($"server {r.ServerCpuUsPerDelivery:F2} us/deliv{Ratios(r, all)}, clients {r.ClientCpuUsPerDelivery:F2} us/deliv, writers {r.WriterCpuSeconds:F2} s, postgres {r.PostgresCpuSeconds:F2} s") +
               (r.FramesPerWrite > 0 ? F($", {r.FramesPerWrite:F2} frames/write, write paths {r.DirectSockets} direct {r.PipeSockets} pipe") : "") +
               F($", server peak RSS {r.ServerPeakRssBytes / 1048576.0:F0} MB") +
               (r.PerInstance is null ? "" : "; per instance: " + string.Join(", ", r.PerInstance.Select(i => F($"{i.Port}: {i.Sockets} sockets, {i.Deliveries} deliv, missing {i.Missing}, {i.CpuSeconds:F2} s CPU = {i.CpuUsPerDelivery:F2} us/deliv, peak RSS {i.PeakRssBytes / 1048576.0:F0} MB")))) +
               (r.SnapshotSockets > 0 ? F($"; snapshots: {r.SnapshotSockets} x {SnapshotBurst.TableRows} rows, last snapshot_end after {r.SnapshotSeconds:F2} s, {r.SnapshotRows} rows received, {r.SnapshotsFailed} failed, L's p99 during the burst {r.SnapshotWindowP99Ms:F2} ms over {r.SnapshotWindowDeliveries} deliveries") : "");
    }

    public static string Ratios(RunResult r, IReadOnlyList<RunResult> all)
    {
        var baseline = all.FirstOrDefault(x => x.Scenario == r.Scenario && x.Mode == "baseline" && x.Error is null && x.Deliveries > 0);
        var floor = all.FirstOrDefault(x => x.Scenario == r.Scenario && x.Mode == "floor" && x.Error is null && x.Deliveries > 0);
        var text = "";
        if (baseline is not null && r.Mode != "baseline")
        {
            text += F($" = {r.ServerCpuUsPerDelivery / baseline.ServerCpuUsPerDelivery:F2}x baseline");
        }

        if (floor is not null && r.Mode != "floor")
        {
            text += F($" = {r.ServerCpuUsPerDelivery / floor.ServerCpuUsPerDelivery:F2}x floor");
        }

        return text;
    }

    public static string Table(IReadOnlyList<RunResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scen | mode | sockets | rows/s | deliveries | missing | dup | resync | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | deliv/s | server CPU us/deliv | x baseline | x floor | clients CPU us/deliv | server RSS MB before→after |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var r in results.Where(r => r.RssPerIdleSocketBytes == 0 && r.Error is null))
        {
            var baseline = results.FirstOrDefault(x => x.Scenario == r.Scenario && x.Mode == "baseline" && x.Deliveries > 0);
            var floor = results.FirstOrDefault(x => x.Scenario == r.Scenario && x.Mode == "floor" && x.Deliveries > 0);
            sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | {r.Sockets} | {r.RowsPerSecond:F0} | {r.Deliveries}/{r.Expected} | {r.Missing} | {r.Duplicates} | {r.Resyncs} | {r.P50Ms:F2} | {r.P90Ms:F2} | {r.P99Ms:F2} | {r.P999Ms:F2} | {r.MaxMs:F2} | {r.DeliveriesPerSecond:F0} | {r.ServerCpuUsPerDelivery:F2} | {Ratio(r, baseline)} | {Ratio(r, floor)} | {r.ClientCpuUsPerDelivery:F2} | {r.ServerRssBeforeBytes / 1048576.0:F0}→{r.ServerRssAfterBytes / 1048576.0:F0} |"));
        }

        sb.AppendLine();
        sb.AppendLine("| scen | mode | sockets | server RSS MB before→after (after full GC) | RSS KB/socket | GC heap KB/socket | connect s |");
        sb.AppendLine("| --- | --- | ---: | --- | ---: | ---: | ---: |");
        foreach (var r in results.Where(r => r.RssPerIdleSocketBytes != 0 && r.Error is null))
        {
            sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | {r.Sockets} | {r.ServerRssBeforeBytes / 1048576.0:F1}→{r.ServerRssAfterBytes / 1048576.0:F1} | {r.RssPerIdleSocketBytes / 1024:F2} | {r.HeapPerIdleSocketBytes / 1024:F2} | {r.ConnectSeconds:F1} |"));
        }

        sb.AppendLine();
        sb.AppendLine("| scen | mode | wall s | server CPU s | postgres CPU s | writers CPU s | clients CPU s | sum, cores busy |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in results.Where(r => r.RssPerIdleSocketBytes == 0 && r.Error is null))
        {
            sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | {r.WallSeconds:F1} | {r.ServerCpuSeconds:F2} | {r.PostgresCpuSeconds:F2} | {r.WriterCpuSeconds:F2} | {r.ClientCpuSeconds:F2} | {(r.ServerCpuSeconds + r.PostgresCpuSeconds + r.WriterCpuSeconds + r.ClientCpuSeconds) / r.WallSeconds:F2} |"));
        }

        if (results.Any(r => r.SnapshotSockets > 0))
        {
            sb.AppendLine();
            sb.AppendLine("| scen | snapshot sockets | rows each | last snapshot_end s | rows received | failed | server peak RSS MB | L's p99 ms during the burst (deliveries) | L's p99 ms, whole SN run | p99 of L alone ms |");
            sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var r in results.Where(r => r.SnapshotSockets > 0 && r.Error is null))
            {
                var alone = results.LastOrDefault(x => x.Scenario == "L" && x.Mode == r.Mode && x.Error is null);
                sb.AppendLine(F($"| {r.Scenario} | {r.SnapshotSockets} | {SnapshotBurst.TableRows} | {r.SnapshotSeconds:F2} | {r.SnapshotRows} | {r.SnapshotsFailed} | {r.ServerPeakRssBytes / 1048576.0:F0} (L alone: {(alone?.ServerPeakRssBytes ?? 0) / 1048576.0:F0}) | {r.SnapshotWindowP99Ms:F2} ({r.SnapshotWindowDeliveries}) | {r.P99Ms:F2} | {alone?.P99Ms:F2} |"));
            }
        }

        if (results.Any(r => r.PerInstance is not null))
        {
            sb.AppendLine();
            sb.AppendLine("| scen | mode | instance (port) | sockets | deliveries | missing | server CPU s | server CPU us/deliv | RSS MB after | peak RSS MB |");
            sb.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var r in results.Where(r => r.PerInstance is not null && r.Error is null))
            {
                foreach (var i in r.PerInstance!)
                {
                    sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | {i.Port} | {i.Sockets} | {i.Deliveries} | {i.Missing} | {i.CpuSeconds:F2} | {i.CpuUsPerDelivery:F2} | {i.RssAfterBytes / 1048576.0:F0} | {i.PeakRssBytes / 1048576.0:F0} |"));
                }

                sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | PostgreSQL: {r.SourceBackends} source backends | | | | {r.SourceBackendCpuSeconds:F2} of {r.PostgresCpuSeconds:F2} | | | |"));
                sb.AppendLine(F($"| {r.Scenario} | {r.Mode} | sum | {r.Sockets} | {r.Deliveries} | {r.Missing} | {r.ServerCpuSeconds:F2} | {r.ServerCpuUsPerDelivery:F2} | {r.ServerRssAfterBytes / 1048576.0:F0} | {r.ServerPeakRssBytes / 1048576.0:F0} |"));
            }
        }

        foreach (var r in results.Where(r => r.Error is not null))
        {
            sb.AppendLine(F($"{r.Scenario} {r.Mode}: FAILED {r.Error}"));
        }

        return sb.ToString();
    }

    private static string Ratio(RunResult r, RunResult? reference) =>
        reference is null || reference == r ? "" : F($"{r.ServerCpuUsPerDelivery / reference.ServerCpuUsPerDelivery:F2}");

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
