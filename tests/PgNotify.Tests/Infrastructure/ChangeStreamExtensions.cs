namespace PgNotify.Tests.Infrastructure;

public static class ChangeStreamExtensions
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>The next change or gap, failing the test if none arrives in time.</summary>
    public static async Task<PgChangeEvent> NextEventAsync(this PgChangeSubscription subscription, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await subscription.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No change arrived within {timeout ?? DefaultTimeout}.");
        }
    }

    /// <summary>The next change, skipping gap markers.</summary>
    public static async Task<PgChange> NextChangeAsync(this PgChangeSubscription subscription, TimeSpan? timeout = null)
    {
        while (true)
        {
            if (await subscription.NextEventAsync(timeout) is PgChange change)
            {
                return change;
            }
        }
    }

    /// <summary>The next change of <paramref name="table"/>, skipping gaps and other tables' changes.</summary>
    public static async Task<PgChange> NextChangeOfAsync(this PgChangeSubscription subscription, string table, TimeSpan? timeout = null)
    {
        while (true)
        {
            var change = await subscription.NextChangeAsync(timeout);
            if (change.Table.Name == table)
            {
                return change;
            }
        }
    }

    public static async Task<List<PgChange>> NextChangesAsync(this PgChangeSubscription subscription, int count, TimeSpan? timeout = null)
    {
        var changes = new List<PgChange>(count);
        while (changes.Count < count)
        {
            changes.Add(await subscription.NextChangeAsync(timeout));
        }

        return changes;
    }

    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan? timeout = null, string? because = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Condition not met in time" + (because is null ? "." : ": " + because));
            }

            await Task.Delay(20);
        }
    }
}
