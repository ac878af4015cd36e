namespace Mesh.LoadTests.Cli;

public static class CommandLine
{
    public static Task<int> RunAsync(string[] args) => Task.FromResult(args.Length);
}
