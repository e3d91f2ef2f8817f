"""The live view: a local web page (loopback only) that shows a decoder's stream as it runs.

``view = LiveView(n_channels=8, fs=200.0, classes=..., label_names=...)``, ``view.start()`` (serves
``http://127.0.0.1:PORT/``), then from the decode loop ``view.publish_samples(chunk)`` (``(C, n)``
samples) and ``view.publish_decision(decision)`` (:class:`~aemg.live.decoder.Decision`), and at the
end ``view.publish_end(time_s)`` and ``view.close()``. The page (``aemg/live/static/view.html``,
self-contained: no CDN, nothing downloaded) draws the channels scrolling on a canvas, the detected
events and their token groups, and the decoded gesture with its confidence; provisional, confirmed
and retracted decisions are told apart by colour and by text.

**Transport**: server-sent events (SSE) on ``GET /events`` (``text/event-stream``), one JSON object per
message, of the event types ``meta``, ``samples``, ``event``, ``group``, ``decision`` and ``end``
(docs/live.md lists the fields). The server is the standard library's ``ThreadingHTTPServer``, bound to
``127.0.0.1`` only: a page a person watches on the machine that decodes, never reachable from the network.

**Never blocks the decoder**: ``publish_*`` only append to per-client queues under a short lock; each
client's own thread writes to its socket. A slow client's queue of samples is bounded (about
``backlog_s`` seconds of display samples): the oldest sample batches are dropped and counted
(a ``dropped`` message tells the client how many); decisions, events and groups are kept (up to a large
bound). A client that connects late first gets ``meta``, the recent decisions / events / groups and
the last ``window_s`` seconds of samples.

**Events and groups** are derived from the decisions when the caller does not publish them itself
(``derive=True``): an event opens at the ``onset_s`` of its first decision; each decision that covers
more groups than the last one closes groups ``n_before+1 .. n_groups`` at its ``time_s`` (a group's end
is when the decoder saw it close, at most its true end + one detector piece); the event's ``final``
decision closes it as confirmed (or ``open_end``) or retracted.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import numpy as np

LOOPBACK = "127.0.0.1"
EVENT_TYPES = ("meta", "samples", "event", "group", "decision", "dropped", "end")


def page_html() -> bytes:
    """The view's page (package data ``aemg/live/static/view.html``)."""
    return resources.files("aemg.live").joinpath("static/view.html").read_bytes()


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclass
class _Client:
    """One connected page: its queues (filled by the publisher, drained by its handler thread)."""

    max_batches: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    items: deque = field(default_factory=deque)  # (seq, bytes) of everything but samples
    samples: deque = field(default_factory=deque)  # (seq, bytes, n display samples) of sample batches
    dropped: int = 0  # display samples dropped for this client
    reported: int = 0  # ``dropped`` when last told to the client
    closed: bool = False

    def push(self, seq: int, msg: bytes, *, n_samples: int = 0) -> None:
        with self.cond:
            if n_samples:
                self.samples.append((seq, msg, n_samples))
                while len(self.samples) > self.max_batches:
                    self.dropped += self.samples.popleft()[2]
            else:
                self.items.append((seq, msg))
                if len(self.items) > 100_000:
                    self.items.popleft()
            self.cond.notify()

    def take(self, timeout: float) -> list[bytes]:
        """The queued messages in publication order (waits up to ``timeout`` s for one); a ``dropped``
        message first when samples were dropped since the last take."""
        with self.cond:
            if not self.items and not self.samples and not self.closed:
                self.cond.wait(timeout)
            out = [m[1] for m in sorted([*self.items, *self.samples], key=lambda m: m[0])]
            self.items.clear()
            self.samples.clear()
            if self.dropped != self.reported:
                self.reported = self.dropped
                out.insert(0, _sse("dropped", {"samples": self.dropped}))
            return out


class LiveView:
    """A live web view of one stream (module docstring); thread-safe publishers, served on 127.0.0.1.

    ``n_channels``/``fs``: the stream's channels and rate (Hz); ``classes``/``label_names``: the model's
    class keys and names; ``port``: 0 = any free port; ``max_display_hz``: samples are decimated
    (every k-th) to at most this rate for the page; ``window_s``: seconds of signal the page shows;
    ``backlog_s``: seconds of display samples queued per client before the oldest are dropped;
    ``batch_s``: display samples are sent in batches of about this many seconds.
    """

    def __init__(self, *, n_channels: int, fs: float, classes: Sequence[str], label_names: Sequence[str] | None = None,
                 title: str = "aemg live", port: int = 0, max_display_hz: float = 250.0, window_s: float = 5.0,
                 backlog_s: float = 2.0, batch_s: float = 0.04, derive: bool = True) -> None:
        if int(n_channels) < 1 or not float(fs) > 0:
            raise ValueError(f"n_channels must be >= 1 and fs > 0 Hz, got {n_channels} and {fs}")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be in 0..65535 (0: any free port), got {port}")
        self.n_channels, self.fs = int(n_channels), float(fs)
        self.classes = tuple(str(c) for c in classes)
        self.label_names = tuple(str(c) for c in (label_names or classes))
        self.port = int(port)
        self.step = max(1, math.ceil(self.fs / float(max_display_hz)))
        self.display_fs = self.fs / self.step
        self.window_s, self.derive = float(window_s), bool(derive)
        self._batch = max(1, int(round(batch_s * self.display_fs)))
        self._max_batches = max(2, math.ceil(backlog_s * self.display_fs / self._batch))
        self.title = title
        self._lock = threading.RLock()  # publish_decision nests the others
        self._clients: list[_Client] = []
        self._seq = 0
        self._history: deque = deque(maxlen=2000)  # (seq, bytes) of non-sample messages, for late clients
        self._recent: deque = deque(maxlen=max(2, math.ceil(window_s * self.display_fs / self._batch)))
        self._clock = 0  # stream samples published
        self._pending: list[np.ndarray] = []  # decimated samples not yet sent
        self._pending_t0 = 0.0
        self._groups: dict[int, int] = {}  # event -> groups shown
        self._group_end: dict[int, float] = {}  # event -> end of its last group shown (s)
        self._ended_events: set[int] = set()
        self.n_decisions = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._connected = threading.Event()  # a page has connected once

    @classmethod
    def for_decoder(cls, decoder: Any, *, title: str = "aemg live", port: int = 0, **kw: Any) -> LiveView:
        """A view of a :class:`~aemg.live.decoder.LiveDecoder`'s stream (its channels, rate and classes)."""
        info = decoder.model.info
        return cls(n_channels=decoder.n_channels, fs=decoder.fs, classes=info.classes, label_names=info.label_names,
                   title=title, port=port, **kw)

    # ------------------------------------------------------------------ server
    def start(self) -> str:
        """Bind ``127.0.0.1:port`` and serve in a background thread; the page's URL.

        Raises :class:`OSError` when the port is taken."""
        if self._server is not None:
            return self.url
        view = self

        class Handler(_Handler):
            pass

        Handler.view = view
        server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="aemg-live-view", daemon=True)
        self._thread.start()
        return self.url

    @property
    def address(self) -> tuple[str, int]:
        """The listening socket's ``(host, port)`` (``getsockname``)."""
        if self._server is None:
            raise RuntimeError("LiveView.start() was not called")
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    def wait_for_client(self, timeout: float | None = None) -> bool:
        """Wait (up to ``timeout`` s; None: for ever) until a page has connected; whether one has."""
        return self._connected.wait(timeout)

    @property
    def n_clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        """Stop serving: clients' streams end, the socket is closed (idempotent)."""
        self._closed.set()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            with c.cond:
                c.closed = True
                c.cond.notify()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ publishing
    def meta(self) -> dict[str, Any]:
        return {"title": self.title, "n_channels": self.n_channels, "fs": self.fs, "display_fs": self.display_fs,
                "classes": list(self.classes), "label_names": list(self.label_names), "window_s": self.window_s}

    def _publish(self, kind: str, data: dict[str, Any], *, n_samples: int = 0) -> None:
        """Queue one message for every client (caller holds ``self._lock``)."""
        self._seq += 1
        msg = _sse(kind, data)
        if n_samples:
            self._recent.append((self._seq, msg))
        else:
            self._history.append((self._seq, msg))
        for c in self._clients:
            c.push(self._seq, msg, n_samples=n_samples)

    def publish_samples(self, chunk: np.ndarray) -> None:
        """The next ``(C, n)`` samples of the stream (in any units; the page scales each channel)."""
        x = np.asarray(chunk)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(f"chunk must have shape ({self.n_channels}, n), got {x.shape}")
        with self._lock:
            first = (-self._clock) % self.step  # decimation phase carried across chunks
            kept = x[:, first::self.step]
            if not self._pending:
                self._pending_t0 = (self._clock + first) / self.fs
            self._clock += x.shape[1]
            if kept.shape[1]:
                self._pending.append(np.asarray(kept, np.float64))
            if sum(p.shape[1] for p in self._pending) >= self._batch:
                self._flush_samples()

    def _flush_samples(self) -> None:
        if not self._pending:
            return
        x = np.concatenate(self._pending, axis=1)
        self._pending = []
        x = np.where(np.isfinite(x), x, 0.0)
        scale = np.abs(x).max(axis=1)
        scale[scale == 0] = 1.0
        q = np.rint(x / scale[:, None] * 1000).astype(np.int32)
        self._publish("samples", {"t0_s": round(self._pending_t0, 6), "fs": self.display_fs,
                                  "scale": [float(f"{s:.6g}") for s in scale], "data": q.tolist()},
                      n_samples=x.shape[1])

    def publish_event(self, event: int, onset_s: float, *, state: str = "open", end_s: float | None = None,
                      open_end: bool = False) -> None:
        """An event of the detector: ``state`` ``open``, ``confirmed`` or ``retracted`` (times in stream s)."""
        with self._lock:
            self._flush_samples()
            self._publish("event", {"event": int(event), "onset_s": round(float(onset_s), 6), "state": state,
                                    "end_s": None if end_s is None else round(float(end_s), 6),
                                    "open_end": bool(open_end)})

    def publish_group(self, event: int, index: int, start_s: float, end_s: float) -> None:
        """Token group ``index`` (from 1) of ``event`` closed: it spans ``start_s``..``end_s`` (stream s)."""
        with self._lock:
            self._flush_samples()
            self._publish("group", {"event": int(event), "index": int(index), "start_s": round(float(start_s), 6),
                                    "end_s": round(float(end_s), 6)})

    def publish_decision(self, decision: Any) -> None:
        """A :class:`~aemg.live.decoder.Decision` (or its ``to_json()`` dict); with ``derive``, also the event
        and groups it implies (module docstring)."""
        d = dict(decision.to_json() if hasattr(decision, "to_json") else decision)
        probs = d.get("probabilities") or [0.0]
        d["confidence"] = round(float(max(probs)), 6)
        e, onset, t = int(d["event"]), float(d["onset_s"]), float(d["time_s"])
        n = int(d.get("n_groups", 0))
        with self._lock:
            if self.derive and e not in self._groups:
                self._groups[e] = 0
                self._group_end[e] = onset
                self.publish_event(e, onset, state="open")
            if self.derive and d["status"] != "retracted":
                for k in range(self._groups[e] + 1, n + 1):
                    self.publish_group(e, k, self._group_end[e], t)
                    self._group_end[e] = t
                self._groups[e] = max(self._groups[e], n)
            self._flush_samples()
            self.n_decisions += 1
            d["seq"] = self.n_decisions
            self._publish("decision", d)
            if self.derive and d.get("final") and e not in self._ended_events:
                self._ended_events.add(e)
                self.publish_event(e, onset, state="retracted" if d["status"] == "retracted" else "confirmed",
                                   end_s=t, open_end=bool(d.get("open_end")))

    def publish_end(self, time_s: float | None = None, **extra: Any) -> None:
        """The stream ended at ``time_s`` (default: the samples published); ``extra`` fields are passed on."""
        with self._lock:
            self._flush_samples()
            t = self._clock / self.fs if time_s is None else float(time_s)
            self._publish("end", {"time_s": round(t, 6), "n_decisions": self.n_decisions, **extra})

    # ------------------------------------------------------------------ clients
    def _connect(self) -> _Client:
        c = _Client(self._max_batches)
        with self._lock:
            c.push(0, _sse("meta", self.meta()))
            for seq, msg in sorted([*self._history, *self._recent], key=lambda m: m[0]):
                c.items.append((seq, msg))
            self._clients.append(c)
        self._connected.set()
        return c

    def _disconnect(self, c: _Client) -> None:
        with self._lock:
            if c in self._clients:
                self._clients.remove(c)


class _Handler(BaseHTTPRequestHandler):
    """``GET /`` the page, ``GET /events`` the SSE stream; nothing else."""

    view: LiveView
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # no access log on stderr: stderr carries the decoder's summary

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html", "/view.html"):
            body = page_html()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        elif path == "/events":
            self._stream()
        else:
            body = b"not found: the live view serves / and /events\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _stream(self) -> None:
        view = self.view
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        client = view._connect()
        try:
            self.wfile.write(b"retry: 1000\n\n")
            idle = 0.0
            while not view._closed.is_set():
                msgs = client.take(timeout=0.5)
                if msgs:
                    self.wfile.write(b"".join(msgs))
                    self.wfile.flush()
                    idle = 0.0
                else:
                    idle += 0.5
                    if idle >= 10.0:  # a comment line: finds a client that went away
                        self.wfile.write(b": ping\n\n")
                        self.wfile.flush()
                        idle = 0.0
                if client.closed:
                    break
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass
        finally:
            view._disconnect(client)


__all__ = ["EVENT_TYPES", "LOOPBACK", "LiveView", "page_html"]
