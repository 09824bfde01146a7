// What a user writes: two lines of PgNotify in an ordinary ASP.NET Core app.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddPgNotify();
builder.Services.AddHealthChecks().AddPgNotify();

var app = builder.Build();
app.UsePgChangeWebSockets();
app.MapHealthChecks("/health");
app.Run();
