import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AbortRolloutRequest(_message.Message):
    __slots__ = ("gateway",)
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    def __init__(self, gateway: _Optional[str] = ...) -> None: ...

class AbortRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: ConfigRollout
    def __init__(self, rollout: _Optional[_Union[ConfigRollout, _Mapping]] = ...) -> None: ...

class ConfigRollout(_message.Message):
    __slots__ = ("phase", "gateways", "version", "last_good_version", "started_at", "bake_started_at", "bake_seconds", "baked_seconds", "reason", "canary", "canary_figures", "rest_figures", "max_error_rate_increase", "summary")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    GATEWAYS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_GOOD_VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    BAKE_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    BAKE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BAKED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIGURES_FIELD_NUMBER: _ClassVar[int]
    REST_FIGURES_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_INCREASE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    phase: str
    gateways: _containers.RepeatedScalarFieldContainer[str]
    version: str
    last_good_version: str
    started_at: _timestamp_pb2.Timestamp
    bake_started_at: _timestamp_pb2.Timestamp
    bake_seconds: float
    baked_seconds: float
    reason: str
    canary: _containers.RepeatedScalarFieldContainer[str]
    canary_figures: VersionFigures
    rest_figures: VersionFigures
    max_error_rate_increase: float
    summary: str
    def __init__(self, phase: _Optional[str] = ..., gateways: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ..., last_good_version: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bake_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bake_seconds: _Optional[float] = ..., baked_seconds: _Optional[float] = ..., reason: _Optional[str] = ..., canary: _Optional[_Iterable[str]] = ..., canary_figures: _Optional[_Union[VersionFigures, _Mapping]] = ..., rest_figures: _Optional[_Union[VersionFigures, _Mapping]] = ..., max_error_rate_increase: _Optional[float] = ..., summary: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Status(_message.Message):
    __slots__ = ("served_version", "accepted_at", "rejected", "last_rejected", "services", "proxies", "reloads_accepted", "reloads_rejected", "generated_at", "policies", "release_driver", "history", "rollout")
    SERVED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    LAST_REJECTED_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    RELOADS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RELOADS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    RELEASE_DRIVER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    served_version: str
    accepted_at: _timestamp_pb2.Timestamp
    rejected: Rejection
    last_rejected: Rejection
    services: _containers.RepeatedCompositeFieldContainer[ServiceStatus]
    proxies: _containers.RepeatedCompositeFieldContainer[ProxyStatus]
    reloads_accepted: int
    reloads_rejected: int
    generated_at: _timestamp_pb2.Timestamp
    policies: str
    release_driver: str
    history: _containers.RepeatedCompositeFieldContainer[PolicyChange]
    rollout: ConfigRollout
    def __init__(self, served_version: _Optional[str] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rejected: _Optional[_Union[Rejection, _Mapping]] = ..., last_rejected: _Optional[_Union[Rejection, _Mapping]] = ..., services: _Optional[_Iterable[_Union[ServiceStatus, _Mapping]]] = ..., proxies: _Optional[_Iterable[_Union[ProxyStatus, _Mapping]]] = ..., reloads_accepted: _Optional[int] = ..., reloads_rejected: _Optional[int] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., policies: _Optional[str] = ..., release_driver: _Optional[str] = ..., history: _Optional[_Iterable[_Union[PolicyChange, _Mapping]]] = ..., rollout: _Optional[_Union[ConfigRollout, _Mapping]] = ...) -> None: ...

class PolicyChange(_message.Message):
    __slots__ = ("at", "accepted", "version", "summary", "commit", "releases")
    AT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    accepted: bool
    version: str
    summary: str
    commit: str
    releases: _containers.RepeatedCompositeFieldContainer[ReleaseTransition]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., accepted: _Optional[bool] = ..., version: _Optional[str] = ..., summary: _Optional[str] = ..., commit: _Optional[str] = ..., releases: _Optional[_Iterable[_Union[ReleaseTransition, _Mapping]]] = ...) -> None: ...

class ReleaseTransition(_message.Message):
    __slots__ = ("service", "phase", "step", "reason", "since")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    service: str
    phase: str
    step: int
    reason: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, service: _Optional[str] = ..., phase: _Optional[str] = ..., step: _Optional[int] = ..., reason: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("at", "errors")
    AT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("name", "stable", "versions", "segments", "incremental", "dark", "endpoints", "pin_header")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STABLE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    DARK_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    PIN_HEADER_FIELD_NUMBER: _ClassVar[int]
    name: str
    stable: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    segments: _containers.RepeatedCompositeFieldContainer[Segment]
    incremental: IncrementalRelease
    dark: _containers.RepeatedCompositeFieldContainer[DarkAnalysis]
    endpoints: _containers.RepeatedCompositeFieldContainer[VersionEndpoints]
    pin_header: str
    def __init__(self, name: _Optional[str] = ..., stable: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., segments: _Optional[_Iterable[_Union[Segment, _Mapping]]] = ..., incremental: _Optional[_Union[IncrementalRelease, _Mapping]] = ..., dark: _Optional[_Iterable[_Union[DarkAnalysis, _Mapping]]] = ..., endpoints: _Optional[_Iterable[_Union[VersionEndpoints, _Mapping]]] = ..., pin_header: _Optional[str] = ...) -> None: ...

class VersionEndpoints(_message.Message):
    __slots__ = ("version", "total", "healthy")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    version: str
    total: int
    healthy: int
    def __init__(self, version: _Optional[str] = ..., total: _Optional[int] = ..., healthy: _Optional[int] = ...) -> None: ...

class DarkAnalysis(_message.Message):
    __slots__ = ("to", "light", "segments", "at", "window_start", "window_seconds", "outcome", "reasons", "dark", "light_figures", "checks", "confidence", "error", "window_note", "note", "comparison")
    TO_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    DARK_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIGURES_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WINDOW_NOTE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    to: str
    light: _containers.RepeatedScalarFieldContainer[str]
    segments: _containers.RepeatedScalarFieldContainer[str]
    at: _timestamp_pb2.Timestamp
    window_start: _timestamp_pb2.Timestamp
    window_seconds: float
    outcome: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    dark: VersionFigures
    light_figures: VersionFigures
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    confidence: float
    error: str
    window_note: str
    note: str
    comparison: Comparison
    def __init__(self, to: _Optional[str] = ..., light: _Optional[_Iterable[str]] = ..., segments: _Optional[_Iterable[str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_seconds: _Optional[float] = ..., outcome: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., dark: _Optional[_Union[VersionFigures, _Mapping]] = ..., light_figures: _Optional[_Union[VersionFigures, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., confidence: _Optional[float] = ..., error: _Optional[str] = ..., window_note: _Optional[str] = ..., note: _Optional[str] = ..., comparison: _Optional[_Union[Comparison, _Mapping]] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("light", "compared", "differing", "noise", "differing_rate", "max_diff_rate", "fields", "skipped", "comparators", "error")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_DIFF_RATE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    COMPARATORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    light: str
    compared: int
    differing: int
    noise: int
    differing_rate: float
    max_diff_rate: float
    fields: _containers.RepeatedCompositeFieldContainer[FieldDiff]
    skipped: _containers.ScalarMap[str, int]
    comparators: int
    error: str
    def __init__(self, light: _Optional[str] = ..., compared: _Optional[int] = ..., differing: _Optional[int] = ..., noise: _Optional[int] = ..., differing_rate: _Optional[float] = ..., max_diff_rate: _Optional[float] = ..., fields: _Optional[_Iterable[_Union[FieldDiff, _Mapping]]] = ..., skipped: _Optional[_Mapping[str, int]] = ..., comparators: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class FieldDiff(_message.Message):
    __slots__ = ("field", "differing", "noise", "beyond_noise", "examples")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    BEYOND_NOISE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    field: str
    differing: int
    noise: int
    beyond_noise: bool
    examples: _containers.RepeatedCompositeFieldContainer[DiffExample]
    def __init__(self, field: _Optional[str] = ..., differing: _Optional[int] = ..., noise: _Optional[int] = ..., beyond_noise: _Optional[bool] = ..., examples: _Optional[_Iterable[_Union[DiffExample, _Mapping]]] = ...) -> None: ...

class DiffExample(_message.Message):
    __slots__ = ("method", "path", "query", "light", "other", "kind", "at")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    method: str
    path: str
    query: str
    light: str
    other: str
    kind: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, method: _Optional[str] = ..., path: _Optional[str] = ..., query: _Optional[str] = ..., light: _Optional[str] = ..., other: _Optional[str] = ..., kind: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("name", "is_rule", "shares", "instances", "mirror")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IS_RULE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    MIRROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    is_rule: bool
    shares: _containers.RepeatedCompositeFieldContainer[Share]
    instances: bool
    mirror: Mirror
    def __init__(self, name: _Optional[str] = ..., is_rule: _Optional[bool] = ..., shares: _Optional[_Iterable[_Union[Share, _Mapping]]] = ..., instances: _Optional[bool] = ..., mirror: _Optional[_Union[Mirror, _Mapping]] = ...) -> None: ...

class Share(_message.Message):
    __slots__ = ("version", "percent")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    version: str
    percent: str
    def __init__(self, version: _Optional[str] = ..., percent: _Optional[str] = ...) -> None: ...

class Mirror(_message.Message):
    __slots__ = ("to", "percent")
    TO_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    to: str
    percent: str
    def __init__(self, to: _Optional[str] = ..., percent: _Optional[str] = ...) -> None: ...

class IncrementalRelease(_message.Message):
    __slots__ = ("to", "steps", "interval_seconds", "on_failure", "state", "analysis", "window", "gates")
    TO_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ON_FAILURE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    GATES_FIELD_NUMBER: _ClassVar[int]
    to: str
    steps: _containers.RepeatedScalarFieldContainer[str]
    interval_seconds: float
    on_failure: str
    state: ReleaseState
    analysis: ReleaseAnalysis
    window: str
    gates: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, to: _Optional[str] = ..., steps: _Optional[_Iterable[str]] = ..., interval_seconds: _Optional[float] = ..., on_failure: _Optional[str] = ..., state: _Optional[_Union[ReleaseState, _Mapping]] = ..., analysis: _Optional[_Union[ReleaseAnalysis, _Mapping]] = ..., window: _Optional[str] = ..., gates: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseAnalysis(_message.Message):
    __slots__ = ("at", "kind", "outcome", "action", "reason", "reasons", "canary", "baseline", "window_start", "step_ends", "deadline", "checks", "confidence", "error", "window_note")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    STEP_ENDS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WINDOW_NOTE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    kind: str
    outcome: str
    action: str
    reason: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    canary: VersionFigures
    baseline: VersionFigures
    window_start: _timestamp_pb2.Timestamp
    step_ends: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    confidence: float
    error: str
    window_note: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., outcome: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., canary: _Optional[_Union[VersionFigures, _Mapping]] = ..., baseline: _Optional[_Union[VersionFigures, _Mapping]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step_ends: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., confidence: _Optional[float] = ..., error: _Optional[str] = ..., window_note: _Optional[str] = ...) -> None: ...

class VersionFigures(_message.Message):
    __slots__ = ("version", "requests", "errors", "resets", "error_rate", "p50_seconds", "p99_seconds", "proxies")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RESETS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P99_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROXIES_FIELD_NUMBER: _ClassVar[int]
    version: str
    requests: int
    errors: int
    resets: int
    error_rate: float
    p50_seconds: float
    p99_seconds: float
    proxies: int
    def __init__(self, version: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., resets: _Optional[int] = ..., error_rate: _Optional[float] = ..., p50_seconds: _Optional[float] = ..., p99_seconds: _Optional[float] = ..., proxies: _Optional[int] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("name", "value", "limit", "breached", "p_value", "significant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BREACHED_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    limit: float
    breached: bool
    p_value: float
    significant: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., limit: _Optional[float] = ..., breached: _Optional[bool] = ..., p_value: _Optional[float] = ..., significant: _Optional[bool] = ...) -> None: ...

class ReleaseState(_message.Message):
    __slots__ = ("phase", "step", "since", "reason", "approvals")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    phase: str
    step: int
    since: _timestamp_pb2.Timestamp
    reason: str
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, phase: _Optional[str] = ..., step: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("step", "by", "at")
    STEP_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    step: int
    by: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[int] = ..., by: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProxyStatus(_message.Message):
    __slots__ = ("stream_id", "node_id", "node_cluster", "stream_kind", "connected_at", "types", "synced_version", "synced_at", "behind", "behind_since", "last_nack", "config_version", "rollout_role")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    STREAM_KIND_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    SYNCED_VERSION_FIELD_NUMBER: _ClassVar[int]
    SYNCED_AT_FIELD_NUMBER: _ClassVar[int]
    BEHIND_FIELD_NUMBER: _ClassVar[int]
    BEHIND_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_NACK_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ROLE_FIELD_NUMBER: _ClassVar[int]
    stream_id: int
    node_id: str
    node_cluster: str
    stream_kind: str
    connected_at: _timestamp_pb2.Timestamp
    types: _containers.RepeatedCompositeFieldContainer[TypeStatus]
    synced_version: str
    synced_at: _timestamp_pb2.Timestamp
    behind: bool
    behind_since: _timestamp_pb2.Timestamp
    last_nack: Nack
    config_version: str
    rollout_role: str
    def __init__(self, stream_id: _Optional[int] = ..., node_id: _Optional[str] = ..., node_cluster: _Optional[str] = ..., stream_kind: _Optional[str] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., types: _Optional[_Iterable[_Union[TypeStatus, _Mapping]]] = ..., synced_version: _Optional[str] = ..., synced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., behind: _Optional[bool] = ..., behind_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_nack: _Optional[_Union[Nack, _Mapping]] = ..., config_version: _Optional[str] = ..., rollout_role: _Optional[str] = ...) -> None: ...

class TypeStatus(_message.Message):
    __slots__ = ("type_url", "type", "sent_version", "acked_version", "behind_since", "last_nack")
    TYPE_URL_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACKED_VERSION_FIELD_NUMBER: _ClassVar[int]
    BEHIND_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_NACK_FIELD_NUMBER: _ClassVar[int]
    type_url: str
    type: str
    sent_version: str
    acked_version: str
    behind_since: _timestamp_pb2.Timestamp
    last_nack: Nack
    def __init__(self, type_url: _Optional[str] = ..., type: _Optional[str] = ..., sent_version: _Optional[str] = ..., acked_version: _Optional[str] = ..., behind_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_nack: _Optional[_Union[Nack, _Mapping]] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("type_url", "version", "message", "at")
    TYPE_URL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    type_url: str
    version: str
    message: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, type_url: _Optional[str] = ..., version: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusEvent(_message.Message):
    __slots__ = ("kind", "sequence", "at", "served_version", "status", "proxy", "service")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[StatusEvent.Kind]
        SNAPSHOT: _ClassVar[StatusEvent.Kind]
        VERSION_SERVED: _ClassVar[StatusEvent.Kind]
        POLICY_REJECTED: _ClassVar[StatusEvent.Kind]
        RELEASE_CHANGED: _ClassVar[StatusEvent.Kind]
        PROXY_CONNECTED: _ClassVar[StatusEvent.Kind]
        PROXY_ACKED: _ClassVar[StatusEvent.Kind]
        PROXY_NACKED: _ClassVar[StatusEvent.Kind]
        PROXY_SYNCED: _ClassVar[StatusEvent.Kind]
        PROXY_DISCONNECTED: _ClassVar[StatusEvent.Kind]
        RELEASE_DECISION: _ClassVar[StatusEvent.Kind]
        DARK_VERDICT: _ClassVar[StatusEvent.Kind]
        RELEASE_FIGURES: _ClassVar[StatusEvent.Kind]
        ROLLOUT_CHANGED: _ClassVar[StatusEvent.Kind]
        ENDPOINTS_CHANGED: _ClassVar[StatusEvent.Kind]
    KIND_UNSPECIFIED: StatusEvent.Kind
    SNAPSHOT: StatusEvent.Kind
    VERSION_SERVED: StatusEvent.Kind
    POLICY_REJECTED: StatusEvent.Kind
    RELEASE_CHANGED: StatusEvent.Kind
    PROXY_CONNECTED: StatusEvent.Kind
    PROXY_ACKED: StatusEvent.Kind
    PROXY_NACKED: StatusEvent.Kind
    PROXY_SYNCED: StatusEvent.Kind
    PROXY_DISCONNECTED: StatusEvent.Kind
    RELEASE_DECISION: StatusEvent.Kind
    DARK_VERDICT: StatusEvent.Kind
    RELEASE_FIGURES: StatusEvent.Kind
    ROLLOUT_CHANGED: StatusEvent.Kind
    ENDPOINTS_CHANGED: StatusEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SERVED_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    kind: StatusEvent.Kind
    sequence: int
    at: _timestamp_pb2.Timestamp
    served_version: str
    status: Status
    proxy: ProxyStatus
    service: ServiceStatus
    def __init__(self, kind: _Optional[_Union[StatusEvent.Kind, str]] = ..., sequence: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., served_version: _Optional[str] = ..., status: _Optional[_Union[Status, _Mapping]] = ..., proxy: _Optional[_Union[ProxyStatus, _Mapping]] = ..., service: _Optional[_Union[ServiceStatus, _Mapping]] = ...) -> None: ...

class CompareReport(_message.Message):
    __slots__ = ("comparator", "listen", "targets", "at")
    COMPARATOR_FIELD_NUMBER: _ClassVar[int]
    LISTEN_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    comparator: str
    listen: str
    targets: _containers.RepeatedCompositeFieldContainer[TargetFigures]
    at: _timestamp_pb2.Timestamp
    def __init__(self, comparator: _Optional[str] = ..., listen: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[TargetFigures, _Mapping]]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TargetFigures(_message.Message):
    __slots__ = ("service", "to", "light", "compared", "skipped", "fields", "differing", "noise", "dark_calls", "light_calls", "examples")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    DARK_CALLS_FIELD_NUMBER: _ClassVar[int]
    LIGHT_CALLS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    service: str
    to: str
    light: str
    compared: int
    skipped: _containers.ScalarMap[str, int]
    fields: _containers.RepeatedCompositeFieldContainer[FieldCount]
    differing: _containers.RepeatedCompositeFieldContainer[FieldSet]
    noise: _containers.RepeatedCompositeFieldContainer[FieldSet]
    dark_calls: CallFigures
    light_calls: CallFigures
    examples: _containers.RepeatedCompositeFieldContainer[ExampleDiff]
    def __init__(self, service: _Optional[str] = ..., to: _Optional[str] = ..., light: _Optional[str] = ..., compared: _Optional[int] = ..., skipped: _Optional[_Mapping[str, int]] = ..., fields: _Optional[_Iterable[_Union[FieldCount, _Mapping]]] = ..., differing: _Optional[_Iterable[_Union[FieldSet, _Mapping]]] = ..., noise: _Optional[_Iterable[_Union[FieldSet, _Mapping]]] = ..., dark_calls: _Optional[_Union[CallFigures, _Mapping]] = ..., light_calls: _Optional[_Union[CallFigures, _Mapping]] = ..., examples: _Optional[_Iterable[_Union[ExampleDiff, _Mapping]]] = ...) -> None: ...

class FieldCount(_message.Message):
    __slots__ = ("field", "differing", "noise")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    field: str
    differing: int
    noise: int
    def __init__(self, field: _Optional[str] = ..., differing: _Optional[int] = ..., noise: _Optional[int] = ...) -> None: ...

class FieldSet(_message.Message):
    __slots__ = ("fields", "count")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, fields: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class CallFigures(_message.Message):
    __slots__ = ("requests", "errors", "resets", "latency_counts")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RESETS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    errors: int
    resets: int
    latency_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, requests: _Optional[int] = ..., errors: _Optional[int] = ..., resets: _Optional[int] = ..., latency_counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ExampleDiff(_message.Message):
    __slots__ = ("field", "example")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    field: str
    example: DiffExample
    def __init__(self, field: _Optional[str] = ..., example: _Optional[_Union[DiffExample, _Mapping]] = ...) -> None: ...

class CompareTargets(_message.Message):
    __slots__ = ("version", "targets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    version: str
    targets: _containers.RepeatedCompositeFieldContainer[CompareTarget]
    def __init__(self, version: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[CompareTarget, _Mapping]]] = ...) -> None: ...

class CompareTarget(_message.Message):
    __slots__ = ("route", "service", "to", "light", "light_endpoints", "dark_endpoints", "methods", "ignore", "headers", "redact")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    LIGHT_FIELD_NUMBER: _ClassVar[int]
    LIGHT_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    DARK_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    REDACT_FIELD_NUMBER: _ClassVar[int]
    route: str
    service: str
    to: str
    light: str
    light_endpoints: _containers.RepeatedScalarFieldContainer[str]
    dark_endpoints: _containers.RepeatedScalarFieldContainer[str]
    methods: _containers.RepeatedScalarFieldContainer[str]
    ignore: _containers.RepeatedScalarFieldContainer[str]
    headers: _containers.RepeatedScalarFieldContainer[str]
    redact: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, route: _Optional[str] = ..., service: _Optional[str] = ..., to: _Optional[str] = ..., light: _Optional[str] = ..., light_endpoints: _Optional[_Iterable[str]] = ..., dark_endpoints: _Optional[_Iterable[str]] = ..., methods: _Optional[_Iterable[str]] = ..., ignore: _Optional[_Iterable[str]] = ..., headers: _Optional[_Iterable[str]] = ..., redact: _Optional[_Iterable[str]] = ...) -> None: ...
