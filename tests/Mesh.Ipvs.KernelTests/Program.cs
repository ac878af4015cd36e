using System.Diagnostics;
using Mesh.Ipvs;
using Mesh.Ipvs.KernelTests;

// Usage (as root, in a kernel with IPVS — see tests/kernel/run-ipvs-tests.sh):
//   Mesh.Ipvs.KernelTests [test [FILTER]]                 run the kernel tests, last line "N passed, M failed"
//   Mesh.Ipvs.KernelTests bench [SERVICES] [DESTS]        library (batched and one-by-one) vs `ipvsadm -R`
var mode = args.Length > 0 ? args[0] : "test";
if (!IpvsHandle.IsSupported())
{
    Console.WriteLine("IPVS is not available in this kernel (run inside user-mode-linux: tests/kernel/run-ipvs-tests.sh)");
    Console.WriteLine("0 passed, 1 failed");
    return 1;
}
switch (mode)
{
    case "test":
        return Runner.RunAll([.. IpvsKernelTests.All(), .. IpvsDataplaneKernelTests.All()], args.Length > 1 ? args[1] : null);
    case "bench":
        int n = args.Length > 1 ? int.Parse(args[1]) : 1000;
        int m = args.Length > 2 ? int.Parse(args[2]) : 10;
        return Benchmark.Run(n, m);
    default:
        Console.Error.WriteLine($"unknown mode {mode}");
        return 2;
}
