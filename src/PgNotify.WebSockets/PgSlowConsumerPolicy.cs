namespace PgNotify.WebSockets;

/// <summary>What happens to a socket whose outbound queue is full because the client does not read fast enough.</summary>
public enum PgSlowConsumerPolicy
{
    /// <summary>
    /// Drop changes for that socket until its queue has drained, then send one <c>resync</c> frame
    /// (<c>"reason":"slow_consumer"</c>) with the number dropped, and carry on. The socket stays open.
    /// </summary>
    Resync,

    /// <summary>Close the socket with 1008 (policy violation, "slow consumer"); the client reconnects and reloads.</summary>
    Close,
}
