using System.Diagnostics;
using Npgsql;

namespace PgNotify.Bench;

/// <summary>
/// The writers, run as a child process (<c>PgNotify.Bench write ...</c>) so that their CPU is not counted as the
/// clients'. Each row carries its sequence number and <c>bench_sent</c>, the monotonic clock (CLOCK_MONOTONIC, the
/// same in every process of the machine) read just before its INSERT is sent.
/// </summary>
internal static class Writer
{
    public static async Task<int> RunAsync(string connectionString, int writers, double rate, long rows, TimeSpan duration, int batch, int pad)
    {
        var padding = new string('x', pad);
        var connections = new List<NpgsqlConnection>();
        for (var i = 0; i < writers; i++)
        {
            var connection = new NpgsqlConnection(connectionString + ";Pooling=false");
            await connection.OpenAsync();
            connections.Add(connection);
        }

        Console.WriteLine("READY");
        if (Console.ReadLine() != "go")
        {
            return 1;
        }

        long next = 0;
        long committed = 0;
        var start = Stopwatch.GetTimestamp();
        var interval = rate > 0 ? Stopwatch.Frequency / rate : 0;
        var deadline = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);

        async Task PacedAsync(NpgsqlConnection connection)
        {
            await using var command = new NpgsqlCommand("INSERT INTO bench_rows (bench_seq, bench_sent, pad) VALUES ($1, $2, $3)", connection);
            var seqParam = new NpgsqlParameter<long>();
            var sentParam = new NpgsqlParameter<long>();
            command.Parameters.Add(seqParam);
            command.Parameters.Add(sentParam);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = padding });
            await command.PrepareAsync();
            while (true)
            {
                var seq = Interlocked.Increment(ref next) - 1;
                if (seq >= rows)
                {
                    return;
                }

                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), start + (long)(seq * interval));
                if (wait > TimeSpan.FromMilliseconds(1))
                {
                    await Task.Delay(wait);
                }

                seqParam.TypedValue = seq;
                sentParam.TypedValue = Stopwatch.GetTimestamp();
                await command.ExecuteNonQueryAsync();
                Interlocked.Increment(ref committed);
            }
        }

        async Task BatchedAsync(NpgsqlConnection connection)
        {
            // One transaction per batch: a multi-row INSERT, one NOTIFY per row from the row-level trigger.
            await using var command = new NpgsqlCommand(
                "INSERT INTO bench_rows (bench_seq, bench_sent, pad) SELECT s, $2, $3 FROM generate_series($1::bigint, $1::bigint + $4 - 1) AS s",
                connection);
            var firstParam = new NpgsqlParameter<long>();
            var sentParam = new NpgsqlParameter<long>();
            command.Parameters.Add(firstParam);
            command.Parameters.Add(sentParam);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = padding });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batch });
            await command.PrepareAsync();
            while (Stopwatch.GetTimestamp() < deadline)
            {
                var first = Interlocked.Add(ref next, batch) - batch;
                if (rate > 0)
                {
                    // Paced batches: the batch holding row `first` starts at the row's scheduled time.
                    if (first >= rows)
                    {
                        Interlocked.Add(ref next, -batch);
                        return;
                    }

                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), start + (long)(first * interval));
                    if (wait > TimeSpan.FromMilliseconds(1))
                    {
                        await Task.Delay(wait);
                    }
                }

                firstParam.TypedValue = first;
                sentParam.TypedValue = Stopwatch.GetTimestamp();
                await command.ExecuteNonQueryAsync();
                Interlocked.Add(ref committed, batch);
            }
        }

        await Task.WhenAll(connections.Select(c => Task.Run(() => batch > 1 ? BatchedAsync(c) : PacedAsync(c))));
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Console.WriteLine($"DONE {committed} {Interlocked.Read(ref next)} {seconds:F3}");
        // Keep the backends until the driver has read PostgreSQL's CPU time (an exited backend's time is gone).
        Console.ReadLine();
        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }

        return 0;
    }
}
