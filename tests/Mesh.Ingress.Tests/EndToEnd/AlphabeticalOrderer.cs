using Xunit.Abstractions;
using Xunit.Sdk;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The lab tests form one story (up → traffic → churn → restart → down); run them in name order.</summary>
public sealed class AlphabeticalOrderer : ITestCaseOrderer
{
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);
}
