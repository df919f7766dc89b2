"""The event bus: capture through NATS JetStream and the ingestion workers that store what it holds.

:mod:`~opslineage.bus.streams` defines the stream both ends share, :mod:`~opslineage.bus.transport`
is the producer side (:class:`NatsTransport`, a :class:`~opslineage.sdk.Transport`), and
:mod:`~opslineage.bus.worker` the consumer side behind ``opslineage worker``. Importing this
package loads nats-py; the SDK never does until a :class:`NatsTransport` is made.
"""

from opslineage.bus.streams import DEFAULT_STREAM, DEFAULT_SUBJECT, DEFAULT_URL, StreamMismatch, event_subject
from opslineage.bus.transport import NatsStats, NatsTransport

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT",
    "DEFAULT_URL",
    "NatsStats",
    "NatsTransport",
    "StreamMismatch",
    "event_subject",
]
