"""The wire messages of Envoy's metrics service, built at run time.

`xds-protos` ships no `envoy.service.metrics.v3` (it imports Prometheus'
`io/prometheus/client/metrics.proto`, whose Python package `io` would shadow the
standard library's). The subset we read is declared here, field numbers as in
envoy/service/metrics/v3/metrics_service.proto and Prometheus' client_model
metrics.proto, in a private descriptor pool so nothing can clash with generated code:

    StreamMetricsMessage { Identifier identifier = 1; repeated MetricFamily envoy_metrics = 2; }
    Identifier           { bytes node = 1; }        # an envoy.config.core.v3.Node, parsed apart
    StreamMetricsResponse {}
    MetricFamily { string name = 1; string help = 2; MetricType type = 3;
                   repeated Metric metric = 4; }
    Metric       { repeated LabelPair label = 1; Gauge gauge = 2; Counter counter = 3;
                   Summary summary = 4; Untyped untyped = 5; int64 timestamp_ms = 6;
                   Histogram histogram = 7; }
    Histogram    { uint64 sample_count = 1; double sample_sum = 2; repeated Bucket bucket = 3; }
    Bucket       { uint64 cumulative_count = 1; double upper_bound = 2; }

Fields we do not declare (exemplars, native histograms, created timestamps) are kept
as unknown fields and ignored.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "METHOD",
    "SERVICE",
    "SUMMARY",
    "UNTYPED",
    "MetricFamily",
    "StreamMetricsMessage",
    "StreamMetricsResponse",
]

SERVICE = "envoy.service.metrics.v3.MetricsService"
METHOD = "StreamMetrics"

# io.prometheus.client.MetricType
COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM = 0, 1, 2, 3, 4

_SCHEMA = """
name: "turnout/analysis/metrics_wire.proto"
package: "turnout.analysis.wire"
syntax: "proto2"
message_type {
  name: "StreamMetricsMessage"
  field { name: "identifier" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Identifier" }
  field { name: "envoy_metrics" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.MetricFamily" }
}
message_type {
  name: "Identifier"
  field { name: "node" number: 1 label: LABEL_OPTIONAL type: TYPE_BYTES }
}
message_type { name: "StreamMetricsResponse" }
message_type {
  name: "MetricFamily"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "help" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "type" number: 3 label: LABEL_OPTIONAL type: TYPE_INT32 }
  field { name: "metric" number: 4 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Metric" }
}
message_type {
  name: "LabelPair"
  field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
}
message_type {
  name: "Value"
  field { name: "value" number: 1 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
}
message_type {
  name: "Metric"
  field { name: "label" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.LabelPair" }
  field { name: "gauge" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Value" }
  field { name: "counter" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Value" }
  field { name: "untyped" number: 5 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Value" }
  field { name: "timestamp_ms" number: 6 label: LABEL_OPTIONAL type: TYPE_INT64 }
  field { name: "histogram" number: 7 label: LABEL_OPTIONAL type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Histogram" }
}
message_type {
  name: "Histogram"
  field { name: "sample_count" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "sample_sum" number: 2 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
  field { name: "bucket" number: 3 label: LABEL_REPEATED type: TYPE_MESSAGE
          type_name: ".turnout.analysis.wire.Bucket" }
}
message_type {
  name: "Bucket"
  field { name: "cumulative_count" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "upper_bound" number: 2 label: LABEL_OPTIONAL type: TYPE_DOUBLE }
}
"""


def _build() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(text_format.Parse(_SCHEMA, descriptor_pb2.FileDescriptorProto()))
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"turnout.analysis.wire.{name}")
        )
        for name in ("StreamMetricsMessage", "StreamMetricsResponse", "MetricFamily")
    }


_CLASSES = _build()

# Message classes (typed Any: they are made at run time, mypy cannot see their fields).
StreamMetricsMessage: Any = _CLASSES["StreamMetricsMessage"]
StreamMetricsResponse: Any = _CLASSES["StreamMetricsResponse"]
MetricFamily: Any = _CLASSES["MetricFamily"]
