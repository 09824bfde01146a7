using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PgNotify.WebSockets;

namespace PgNotify.Tests.WebSockets.Units;

/// <summary><see cref="PgChangeWebSocketOptions.DirectSocketWrites"/>: on by default, read from configuration as a bool, nothing else.</summary>
public sealed class DirectSocketWritesOptionTests
{
    [Fact]
    public void Default_IsOn() => new PgChangeWebSocketOptions().DirectSocketWrites.Should().BeTrue();

    [Theory]
    [InlineData("false", false)]
    [InlineData("False", false)]
    [InlineData("true", true)]
    public void FromConfiguration_ABool_IsRead(string value, bool expected) =>
        Read(value)().DirectSocketWrites.Should().Be(expected);

    [Theory]
    [InlineData("no")] // not a bool
    [InlineData("0")] // a number, not a bool
    [InlineData("\ud800")] // a lone surrogate
    [InlineData("99999999999999999999")] // a huge number
    [InlineData("")] // empty
    public void FromConfiguration_AHostileValue_IsRefusedWhenTheOptionsAreRead(string value)
    {
        var read = Read(value);
        read.Should().Throw<InvalidOperationException>().Which.Message.Should().Contain("DirectSocketWrites");
    }

    private static Func<PgChangeWebSocketOptions> Read(string value)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["PgNotify:WebSockets:DirectSocketWrites"] = value })
            .Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddPgNotify(o => o.ConnectionString = "Host=127.0.0.1;Username=postgres")
            .BuildServiceProvider();
        return () =>
        {
            using (services)
            {
                return services.GetRequiredService<IOptions<PgChangeWebSocketOptions>>().Value;
            }
        };
    }
}
