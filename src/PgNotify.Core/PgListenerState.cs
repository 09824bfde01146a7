namespace PgNotify;

/// <summary>The state of the listener's connection.</summary>
public enum PgListenerState
{
    /// <summary>Not started, or stopped with the host.</summary>
    Stopped,

    /// <summary>Opening its first connection.</summary>
    Connecting,

    /// <summary>Connected and listening: changes committed now are delivered.</summary>
    Listening,

    /// <summary>Lost its connection and is waiting (with backoff) to connect again.</summary>
    Reconnecting,
}
