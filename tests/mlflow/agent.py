"""A stand-in for an agent: the OpenTelemetry Python SDK with its OTLP/HTTP exporter, configured
only by the environment (as the webhook injects it), sending one span and exiting.

The e2e suite runs it under a container's env taken from a Pod the webhook mutated, so a
wrong variable name, protocol or resource attribute shows up as a missing or misnamed trace.
"""
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult


class Checked(OTLPSpanExporter):
    """The SDK's exporter, remembering how its last export went (the processor only logs)."""

    result = None

    def export(self, spans):
        Checked.result = super().export(spans)
        return Checked.result


def main():
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    if protocol != "http/protobuf":
        sys.exit(f"agent.py: OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}; this exporter speaks http/protobuf")
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(SimpleSpanProcessor(Checked()))
    tracer = provider.get_tracer("openclaw-agent-probe")
    with tracer.start_as_current_span("agent step") as span:
        span.set_attribute("probe", sys.argv[1] if len(sys.argv) > 1 else "")
    provider.shutdown()
    if Checked.result != SpanExportResult.SUCCESS:
        sys.exit(f"agent.py: export to {os.environ.get('OTEL_EXPORTER_OTLP_ENDPOINT')!r} failed: {Checked.result}")
    print(f"agent.py: one span sent as service.name={provider.resource.attributes.get('service.name')!r}")


if __name__ == "__main__":
    main()
