// The Maglev table's build time and share imbalance (issue 11 part 5). Build first (dotnet build src/Mesh.Ingress -c Release), then:
//   dotnet fsi load-tests/maglev/table-build.fsx
#r "../../src/Mesh.Ingress/bin/Release/net10.0/mesh.dll"
open Mesh.Ingress.Balancing
let time (n:int) (size:int) =
    let keys = [| for i in 0 .. n-1 -> sprintf "10.255.%d.%d" (i / 250) (2 + i % 250) |]
    MaglevTable.Build(keys, size) |> ignore
    let sw = System.Diagnostics.Stopwatch.StartNew()
    let reps = 200
    for _ in 1 .. reps do MaglevTable.Build(keys, size) |> ignore
    let t = MaglevTable.Build(keys, size)
    let shares = t.Shares()
    printfn "N=%d M=%d build %.1f us, shares %d-%d (ideal %.2f), worst %.1f%% off 1/N" n t.Size (sw.Elapsed.TotalMilliseconds * 1000.0 / float reps) (Array.min shares) (Array.max shares) (float t.Size / float n) (100.0 * max (float (Array.max shares) * float n / float t.Size - 1.0) (1.0 - float (Array.min shares) * float n / float t.Size))
for (n, m) in [ (4, 251); (10, 251); (25, 251); (26, 1021); (100, 1021); (100, 4093); (400, 4093); (4, 65537) ] do time n m
