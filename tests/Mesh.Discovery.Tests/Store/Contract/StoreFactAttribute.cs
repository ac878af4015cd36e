using Mesh.Discovery.Tests.Store.Etcd;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Mesh.Discovery.Tests.Store.Contract;

/// <summary>Marks a test class that needs a real etcd: its <see cref="StoreFactAttribute"/> tests are skipped, with the reason, when etcd is not installed.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class RequiresEtcdAttribute : Attribute;

/// <summary>
/// A fact that runs unless its (concrete) test class is <see cref="RequiresEtcdAttribute"/> and no etcd binary is
/// installed. Needed because the contract tests are declared once in an abstract class and run per store.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
[XunitTestCaseDiscoverer("Mesh.Discovery.Tests.Store.Contract.StoreFactDiscoverer", "Mesh.Discovery.Tests")]
public sealed class StoreFactAttribute : FactAttribute;

public sealed class StoreFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var type = testMethod.TestClass.Class.ToRuntimeType();
        var needsEtcd = type?.GetCustomAttributes(typeof(RequiresEtcdAttribute), inherit: true).Length > 0;
        var display = discoveryOptions.MethodDisplayOrDefault();
        var displayOptions = discoveryOptions.MethodDisplayOptionsOrDefault();
        yield return needsEtcd && EtcdProcess.BinaryPath is null
            ? new SkippedTestCase(diagnosticMessageSink, display, displayOptions, testMethod, EtcdProcess.MissingReason)
            : new XunitTestCase(diagnosticMessageSink, display, displayOptions, testMethod);
    }
}

public sealed class SkippedTestCase : XunitTestCase
{
    private string _reason = "";

    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedTestCase()
    {
    }

    public SkippedTestCase(IMessageSink sink, TestMethodDisplay display, TestMethodDisplayOptions options, ITestMethod method, string reason)
        : base(sink, display, options, method)
    {
        _reason = reason;
    }

    protected override string GetSkipReason(IAttributeInfo factAttribute) => _reason;

    public override void Serialize(IXunitSerializationInfo data)
    {
        base.Serialize(data);
        data.AddValue("SkipReason", _reason);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        _reason = data.GetValue<string>("SkipReason");
        base.Deserialize(data);
    }
}
