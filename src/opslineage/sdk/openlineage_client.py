"""Delivery through openlineage-python: :class:`OpenLineageClientTransport`.

The ``OpenLineageClient`` resolves its own transport (``openlineage.yml``, ``OPENLINEAGE_URL``,
``OPENLINEAGE__TRANSPORT__…`` variables, or a config passed in), so the SDK reaches Marquez, an
opslineage server, a file, Kafka or the console by OpenLineage's configuration alone::

    tracer = Tracer("aiops.prod", transport=OpenLineageClientTransport())

The client only emits its attrs event classes, and every transport it ships serializes them with
``Serde``, which drops ``None`` from objects and ``None`` and ``{}`` from arrays. Our facets leave
unset fields out, but a value inside an array may be null (a gap in a telemetry row), and events
from other producers may hold nulls anywhere; an artifact's digest covers its content as sent. So
each facet is handed over wrapped in an ``Enum`` member whose value is the facet: ``Serde``
writes an enum's value as it is (that is how it writes ``eventType``), and every facet arrives
with the same content. The client may add facets of its own (``tags``, ``sourceCodeLocation``,
``environmentVariables``, as configured). A check at construction refuses a client whose
``Serde`` no longer keeps such values intact.

Needs the ``openlineage-python`` package.
"""

from __future__ import annotations

import json
from enum import Enum
from functools import cache
from typing import Any, cast

from openlineage.client import OpenLineageClient, event_v2
from openlineage.client.serde import Serde

from opslineage.sdk._emitter import redact_url
from opslineage.sdk.transports import TransportError, TransportUnavailable

__all__ = ["OpenLineageClientTransport", "to_openlineage"]

_EVENT_KEYS = {
    "run": {"eventType", "eventTime", "producer", "schemaURL", "run", "job", "inputs", "outputs"},
    "job": {"eventTime", "producer", "schemaURL", "job", "inputs", "outputs"},
    "dataset": {"eventTime", "producer", "schemaURL", "dataset"},
}
_DATASET_KEYS = {"namespace", "name", "facets"}


class OpenLineageClientTransport:
    """Sends events through an ``openlineage.client.OpenLineageClient``.

    Args:
        client: the client to use; default, one made here (closed by :meth:`close`), configured
            as OpenLineage resolves it: ``config``, then ``openlineage.yml``, then
            ``OPENLINEAGE__…`` variables, then ``OPENLINEAGE_URL``, else the console.
        config: the client's configuration, e.g. ``{"transport": {"type": "file",
            "log_file_path": "events.jsonl", "append": True}}``.

    Raises:
        ValueError: both a client and a config were given.
        RuntimeError: this openlineage-python would not serialize facets intact.
    """

    def __init__(
        self, client: OpenLineageClient | None = None, *, config: dict[str, Any] | None = None
    ) -> None:
        if client is not None and config is not None:
            raise ValueError("give a client or a config, not both")
        if not _serde_keeps_facets_intact():
            raise RuntimeError(
                "this openlineage-python's Serde alters facet values; opslineage digests would not verify"
            )
        self.client = client if client is not None else OpenLineageClient(config=config)
        self._owns_client = client is None
        backend = getattr(self.client, "transport", None)
        self.sink = str(getattr(backend, "url", None) or type(backend).__qualname__)

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Hand each event to the client, in order.

        An event the client's classes cannot carry is refused alone. When the client cannot
        deliver one for a reason that may pass (a connection refused or reset, a timeout, an HTTP
        5xx, 408 or 429), the batch stops there and the rest is retried later, spilled meanwhile
        (a backend that is down is not asked again for every event); any other failure refuses
        that event and the rest of the batch.

        Raises:
            TransportUnavailable: the backend cannot take events now; how many of the batch were
                dealt with before.
            TransportError: how many events were refused, and the first reason.
        """
        refused: list[str] = []
        for index, event in enumerate(events):
            try:
                converted = to_openlineage(event)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                refused.append(f"{type(error).__name__}: {error}")
                continue
            try:
                self.client.emit(converted)
            except Exception as error:  # whatever the client's transport raises is a delivery failure
                reason = redact_url(f"{type(error).__name__}: {error}")
                if _transient(error):
                    raise TransportUnavailable(
                        f"the OpenLineage client cannot deliver now: {reason}",
                        delivered=index - len(refused),
                        refused=len(refused),
                    ) from None
                refused.append(reason)
                raise TransportError(
                    _message(refused), refused=len(refused) + len(events) - index - 1
                ) from error
        if refused:
            raise TransportError(_message(refused), refused=len(refused))

    def close(self) -> None:
        """Close the client (waiting for its queued events) if this transport made it."""
        if self._owns_client:
            self.client.close()


def to_openlineage(event: dict[str, Any]) -> event_v2.RunEvent | event_v2.JobEvent | event_v2.DatasetEvent:
    """The client's event object for an OpenLineage event dict, facets carried verbatim.

    Raises:
        ValueError: a key the client's classes have no field for, or a value they refuse
            (e.g. a runId that is not a UUID).
        KeyError: a required key is missing.
    """
    kind = "run" if "run" in event else "dataset" if "dataset" in event else "job"
    _check_keys(event, _EVENT_KEYS[kind], "event")
    common: dict[str, Any] = {"eventTime": event["eventTime"], "producer": event.get("producer", "")}
    converted: event_v2.RunEvent | event_v2.JobEvent | event_v2.DatasetEvent
    if kind == "dataset":
        static = _dataset(event_v2.StaticDataset, event["dataset"], "dataset")
        converted = event_v2.DatasetEvent(dataset=static, **common)
    else:
        job = event["job"]
        _check_keys(job, _DATASET_KEYS, "job")
        common["job"] = event_v2.Job(job["namespace"], job["name"], _facets(job.get("facets")))
        for key, cls, where in (
            ("inputs", event_v2.InputDataset, "input"),
            ("outputs", event_v2.OutputDataset, "output"),
        ):
            datasets = event.get(key)
            common[key] = None if datasets is None else [_dataset(cls, d, where) for d in datasets]
        if kind == "job":
            converted = event_v2.JobEvent(**common)
        else:
            run = event["run"]
            _check_keys(run, {"runId", "facets"}, "run")
            state = event.get("eventType")
            converted = event_v2.RunEvent(
                run=event_v2.Run(run["runId"], _facets(run.get("facets"))),
                eventType=event_v2.RunState(state) if state is not None else None,
                **common,
            )
    if "schemaURL" in event:
        converted.schemaURL = event["schemaURL"]  # the class would state its own spec version
    return converted


def _dataset(cls: type[Any], dataset: dict[str, Any], where: str) -> Any:
    extra = {"input": "inputFacets", "output": "outputFacets"}.get(where)
    _check_keys(dataset, _DATASET_KEYS | ({extra} if extra else set()), where)
    kwargs = {extra: _facets(dataset.get(extra))} if extra else {}
    return cls(dataset["namespace"], dataset["name"], facets=_facets(dataset.get("facets")), **kwargs)


def _facets(facets: dict[str, Any] | None) -> dict[str, Any] | None:
    if facets is None:
        return None
    return {key: _verbatim(value) for key, value in facets.items()}


def _verbatim(value: Any) -> Enum:
    """An enum member whose value is ``value``: ``Serde`` emits it without dropping its nulls."""
    members = cast("type[Enum]", Enum("VerbatimFacet", [("FACET", value)]))
    return members["FACET"]


def _check_keys(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValueError(f"{where} has keys the OpenLineage client cannot carry: {', '.join(unknown)}")


_RETRIED_STATUSES = {408, 425, 429}
_NETWORK_LIBRARIES = {"requests", "urllib3", "httpx", "http"}


def _transient(error: Exception) -> bool:
    """Whether a delivery failure may pass: a connection refused or reset, a timeout, an error
    of the client's HTTP library (those are OSErrors), or an HTTP status other than a 4xx
    refusal of the event itself. A file that cannot be written is a refusal."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status in _RETRIED_STATUSES
    library = type(error).__module__.split(".")[0]
    return isinstance(error, ConnectionError | TimeoutError) or (
        isinstance(error, OSError) and library in _NETWORK_LIBRARIES
    )


def _message(refused: list[str]) -> str:
    return f"{len(refused)} event(s) not delivered by the OpenLineage client, first: {refused[0]}"


@cache
def _serde_keeps_facets_intact() -> bool:
    probe: dict[str, Any] = {
        "_producer": "p",
        "_schemaURL": "s",
        "null": None,
        "rows": [[1.5, None], {}],
        "empty": {},
    }
    return bool(json.loads(Serde.to_json({"facet": _verbatim(probe)}))["facet"] == probe)
