using Yarp.ReverseProxy.Forwarder;

namespace Mesh.Ingress.Http;

/// <summary>YARP's client factory with every backend connection opened in the ingress sandbox (<see cref="SandboxConnector"/>).</summary>
public sealed class SandboxHttpClientFactory(SandboxConnector connector) : ForwarderHttpClientFactory
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectCallback = connector.ConnectAsync;
    }
}
