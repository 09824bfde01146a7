namespace PgNotify.Client;

/// <summary>
/// What a subscription yields (<see cref="PgNotifyClient.SubscribeAsync"/>): <see cref="PgSubscribedMessage"/>,
/// <see cref="PgChangeMessage"/>, <see cref="PgResyncMessage"/>, <see cref="PgSnapshotMessage"/> and
/// <see cref="PgSnapshotEndMessage"/>. Switch on the type.
/// </summary>
public abstract class PgNotifyMessage
{
    private protected PgNotifyMessage(string table)
    {
        Table = table;
    }

    /// <summary>The subscription's table: <c>name</c> for schema <c>public</c>, otherwise <c>schema.name</c>.</summary>
    public string Table { get; }
}
