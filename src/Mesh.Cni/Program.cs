// The plugin and nothing else: environment and stdin in, result or error JSON on stdout (Mesh.Ingress.Cni.CniMain).
return await Mesh.Ingress.Cni.CniMain.RunAsync();
