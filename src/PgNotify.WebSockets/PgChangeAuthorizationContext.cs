using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace PgNotify.WebSockets;

/// <summary>
/// What <see cref="PgChangeWebSocketOptions.AuthorizeChange"/> decides about: whether one row of one change may go to
/// one socket. A new instance is made for each call, and it never changes.
/// </summary>
/// <remarks>
/// The hook is called once for the change's row (<see cref="PgChange.Row"/>: the new row, or the old row of a DELETE).
/// For an UPDATE that passes, it is called a second time for the row as it was before the update, with
/// <see cref="IsOldRow"/> set and <see cref="Change"/> holding that old row as its <see cref="PgChange.Data"/>. When
/// that second call refuses, the frame is sent without its <c>old</c> values: a row handed from one user to another
/// never shows the new owner what it held before (docs/security.md).
/// </remarks>
public sealed class PgChangeAuthorizationContext
{
    internal PgChangeAuthorizationContext(HttpContext httpContext, PgChange change, bool isOldRow)
    {
        HttpContext = httpContext;
        Change = change;
        IsOldRow = isOldRow;
    }

    /// <summary>The WebSocket's HTTP request.</summary>
    public HttpContext HttpContext { get; }

    /// <summary>The authenticated user of the socket.</summary>
    public ClaimsPrincipal User => HttpContext.User;

    /// <summary>
    /// The change about to be sent. When <see cref="IsOldRow"/> is set, a view of the UPDATE whose
    /// <see cref="PgChange.Data"/> is the old row and whose <see cref="PgChange.Old"/> is <see langword="null"/>.
    /// </summary>
    public PgChange Change { get; }

    /// <summary>
    /// The row this call decides about: <see cref="PgChange.Row"/> of <see cref="Change"/> (the new row; the old row of a
    /// DELETE, or of an UPDATE when <see cref="IsOldRow"/> is set; <see langword="null"/> for TRUNCATE).
    /// </summary>
    public JsonElement? Row => Change.Row;

    /// <summary>
    /// <see langword="true"/> when this call decides whether the UPDATE's old values (the frame's <c>old</c>) may go to
    /// the socket too; refusing then sends the change without them.
    /// </summary>
    public bool IsOldRow { get; }
}
