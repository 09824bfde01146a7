using System.Threading.Channels;
using PgNotify.Client;

namespace PgNotify.Client.Tests.Infrastructure;

/// <summary>Enumerates a subscription on its own task and records every message, so tests can wait for one.</summary>
public sealed class Collector : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly Channel<PgNotifyMessage> _messages = Channel.CreateUnbounded<PgNotifyMessage>();
    private readonly List<PgNotifyMessage> _seen = [];
    private readonly CancellationTokenSource _stop = new();

    public Collector(IAsyncEnumerable<PgNotifyMessage> subscription)
    {
        Completion = Task.Run(async () =>
        {
            try
            {
                await foreach (var message in subscription.WithCancellation(_stop.Token))
                {
                    await _messages.Writer.WriteAsync(message);
                }

                _messages.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _messages.Writer.TryComplete(ex);
                throw;
            }
        });
    }

    /// <summary>Ends when the enumeration ends; faults with what the enumerator threw.</summary>
    public Task Completion { get; }

    /// <summary>Every message taken so far by the Wait methods.</summary>
    public IReadOnlyList<PgNotifyMessage> Seen => _seen;

    /// <summary>Waits for the next message matching <paramref name="match"/>; the ones before it are kept in <see cref="Seen"/>.</summary>
    public async Task<T> WaitForAsync<T>(Func<T, bool>? match = null, TimeSpan? timeout = null)
        where T : PgNotifyMessage
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        while (true)
        {
            PgNotifyMessage message;
            try
            {
                message = await _messages.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No {typeof(T).Name} matching within {timeout ?? Timeout}; seen: {string.Join(", ", _seen.Select(Describe))}");
            }

            _seen.Add(message);
            if (message is T typed && (match is null || match(typed)))
            {
                return typed;
            }
        }
    }

    public static string Describe(PgNotifyMessage message) => message switch
    {
        PgChangeMessage c => $"change {c.Operation} {c.Data?.GetRawText() ?? c.Old?.GetRawText()} @{c.Position}",
        PgResyncMessage r => $"resync {r.Reason}",
        PgSubscribedMessage s => $"subscribed @{s.Position} resumed={s.Resumed} snapshot={s.Snapshot}",
        PgSnapshotMessage s => $"snapshot {s.Rows.Count} rows",
        PgSnapshotEndMessage e => $"snapshot_end {e.Count}",
        _ => message.GetType().Name,
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Completion;
        }
        catch (Exception)
        {
            // Cancelled, or a failure a test has already looked at.
        }

        _stop.Dispose();
    }
}
