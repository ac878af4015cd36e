return await Mesh.LoadTests.Cli.CommandLine.RunAsync(args).ConfigureAwait(false);
