"""The live view (:mod:`aemg.live.view`, ``aemg live --view``) on a real Côté-Allard recording.

The session's tiny run (conftest) fine-tuned on an evaluation subject, as in tests/test_live.py; that subject's
recordings are decoded. (a) the server listens on 127.0.0.1 and its SSE stream carries what is published, to a
plain HTTP client; a client that does not read never blocks the publisher. (b) end to end: ``aemg live --view``
in a subprocess, the page opened in headless Chromium (Debian's chromium + chromium-driver, from
scripts/_browser.sh) through Selenium with the system chromedriver; the page must show the decisions, and a
screenshot PNG is written to ``$AEMG_TEST_ARTIFACTS`` (default ``<repo>/test-artifacts/``).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning_fabric")
pytest.importorskip("vector_quantize_pytorch")
pytest.importorskip("sklearn")

from aemg.cli import main  # noqa: E402
from aemg.live import LiveDecoder  # noqa: E402
from aemg.live.model import LiveModel  # noqa: E402
from aemg.live.view import LiveView, page_html  # noqa: E402
from live_helpers import decode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
USER = "cote-allard/evaluation/Female0"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def model_dir(cote_allard_live_model) -> Path:
    """The session's live-test model directory (conftest: the tiny run fine-tuned on USER's first repetitions)."""
    return cote_allard_live_model


@pytest.fixture(scope="module")
def live_model(model_dir) -> LiveModel:
    return LiveModel(model_dir)


@pytest.fixture(scope="module")
def active_recording(live_model, corpus_cote_allard):
    """A recording of USER whose decoding holds confirmed and retracted events (the first one found, else the one
    with the most events), unscaled as the decoder takes it."""
    best, most = None, 0
    for rec in corpus_cote_allard.iter_recordings(subject=USER, scaled=False):
        d = decode(live_model, rec, rec.n_samples)
        statuses = {x.status for x in d}
        if {"confirmed", "retracted"} <= statuses:
            return rec
        if "confirmed" in statuses and len({x.event for x in d}) > most:
            best, most = rec, len({x.event for x in d})
    assert best is not None, f"no recording of {USER} holds a confirmed event"
    return best


class _SSE:
    """A plain HTTP client of the view's ``/events``: ``(type, data)`` messages as they arrive."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.conn = http.client.HTTPConnection(*address, timeout=10)
        self.conn.request("GET", "/events")
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type", "").startswith("text/event-stream")
        self.buf = b""

    def until(self, stop, timeout: float = 20.0) -> list[tuple[str, dict]]:
        """Messages until ``stop(type, data)`` is true for one (included)."""
        out: list[tuple[str, dict]] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode().splitlines()
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    out.append((fields["event"], json.loads(fields["data"])))
                    if stop(*out[-1]):
                        return out
            self.buf += self.resp.fp.read1(65536)
        raise AssertionError(f"the SSE stream did not deliver the expected message in {timeout} s; got "
                             f"{[t for t, _ in out][-20:]}")

    def close(self) -> None:
        self.conn.close()


def test_view_is_loopback_only_and_streams_published_decisions(live_model, active_recording):
    rec = active_recording
    decisions = decode(live_model, rec, 32)
    info = live_model.info
    with LiveView(n_channels=rec.n_channels, fs=rec.fs, classes=info.classes, label_names=info.label_names) as view:
        host, port = view._server.socket.getsockname()[:2]
        assert host == "127.0.0.1" and view.address == (host, port) and port > 0
        assert view.url == f"http://127.0.0.1:{port}/"
        # the page: self-contained (no external script, style or font), with the elements the view fills
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        html = resp.read().decode()
        assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
        assert html == page_html().decode()
        assert 'id="traces"' in html and 'id="gesture"' in html and "EventSource" in html
        assert "http://" not in html and "https://" not in html and "src=" not in html
        conn.request("GET", "/nope")
        assert conn.getresponse().status == 404
        conn.close()

        client = _SSE(view.address)
        dec = LiveDecoder(live_model, subject=rec.subject, session=rec.session, mains_hz=rec.mains_hz)
        for a in range(0, rec.n_samples, 32):
            view.publish_samples(rec.signal[:, a:a + 32])
            for d in dec.process(rec.signal[:, a:a + 32]):
                view.publish_decision(d)
        for d in dec.flush():
            view.publish_decision(d)
        view.publish_end()
        msgs = client.until(lambda t, _: t == "end")
        client.close()
        late = _SSE(view.address)  # a page that connects after the stream: meta, then the history
        again = late.until(lambda t, _: t == "end")
        late.close()
    assert again[0][0] == "meta"
    assert [m for t, m in again if t == "decision"] == [m for t, m in msgs if t == "decision"]
    types = [t for t, _ in msgs]
    assert types[0] == "meta" and msgs[0][1]["classes"] == list(info.classes) and msgs[0][1]["n_channels"] == 8
    got = [m for t, m in msgs if t == "decision"]
    assert [(m["status"], m["event"], m["gesture"], m["n_groups"], m["time_s"]) for m in got] == [
        (d.status, d.event, d.gesture, d.n_groups, round(d.time_s, 6)) for d in decisions]
    assert [m["seq"] for m in got] == list(range(1, len(decisions) + 1))
    assert all(m["confidence"] == pytest.approx(max(m["probabilities"])) for m in got)
    # events and groups derived from the decisions
    events = [m for t, m in msgs if t == "event"]
    confirmed = {d.event for d in decisions if d.status == "confirmed"}
    assert {m["event"] for m in events if m["state"] == "confirmed"} == confirmed
    assert all(m["end_s"] is None for m in events if m["state"] == "open")
    groups = [m for t, m in msgs if t == "group"]
    for e in confirmed:
        n = max(d.n_groups for d in decisions if d.event == e)
        assert [g["index"] for g in groups if g["event"] == e] == list(range(1, n + 1))
    # every sample is there (decimation 1 at 200 Hz), in order, and the end closes the stream
    samples = [m for t, m in msgs if t == "samples"]
    assert sum(len(m["data"][0]) for m in samples) == rec.n_samples
    t0 = [m["t0_s"] for m in samples]
    assert t0 == sorted(t0) and t0[0] == 0.0
    x = np.concatenate([np.asarray(m["data"], float) * np.asarray(m["scale"])[:, None] / 1000 for m in samples], 1)
    np.testing.assert_allclose(x, rec.signal, atol=np.abs(rec.signal).max() / 1000)
    assert msgs[-1][1]["n_decisions"] == len(decisions)
    assert msgs[-1][1]["time_s"] == pytest.approx(rec.n_samples / rec.fs)


def test_a_client_that_does_not_read_never_blocks_the_decoder(active_recording):
    rec = active_recording
    with LiveView(n_channels=rec.n_channels, fs=rec.fs, classes=("a", "b"), backlog_s=1.0) as view:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect(view.address)
        s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert view.wait_for_client(10)
        worst = 0.0
        t = time.perf_counter()
        for _ in range(400):  # 400 passes over the recording: over half an hour of signal, never read
            for a in range(0, rec.n_samples, 32):
                t1 = time.perf_counter()
                view.publish_samples(rec.signal[:, a:a + 32])
                worst = max(worst, time.perf_counter() - t1)
        total = time.perf_counter() - t
        client = view._clients[0]
        assert client.dropped > 0 and len(client.samples) <= client.max_batches
        assert worst < 0.5, worst  # a publish never waited for the socket
        assert total < 60
        s.settimeout(5)
        got = b""
        with contextlib.suppress(TimeoutError):
            while b"event: dropped" not in got:
                part = s.recv(1 << 16)
                if not part:
                    break
                got += part
        s.close()
    assert b"event: dropped" in got


def test_view_port_in_use_is_refused_naming_the_option(model_dir, corpus_cote_allard, active_recording):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(["--log-level", "ERROR", "live", "--model", str(model_dir), "--replay",
                       f"{corpus_cote_allard.path}:{active_recording.recording_id}", "--speed", "0", "--view",
                       "--view-port", str(port)])
    finally:
        taken.close()
    assert rc == 1 and f"--view-port {port}" in err.getvalue() and "free port on 127.0.0.1" in err.getvalue()


def _artifacts() -> Path:
    out = Path(os.environ.get("AEMG_TEST_ARTIFACTS") or REPO / "test-artifacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _browser():
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        f"headless Chromium is missing ({CHROMIUM}, {CHROMEDRIVER}): run scripts/_browser.sh "
        "(apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # pragma: no cover
        raise AssertionError(f"selenium is missing ({exc}): pip install -e '.[dev]'") from None
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
              "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _wait(driver, cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = driver.execute_script(cond)
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"the page did not show {what} within {timeout} s")


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default, so Python turns it into KeyboardInterrupt even when
    the test runs in a background job (a non-interactive shell starts those with SIGINT ignored, and an
    ignored SIGINT is inherited: the SIGINT that ends --view-linger would then do nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_page_in_headless_chromium_shows_the_decisions_of_a_replay(model_dir, live_model, corpus_cote_allard,
                                                                   active_recording, tmp_path):
    rec = active_recording
    want = decode(live_model, rec, 16)
    out, err = tmp_path / "stdout.jsonl", tmp_path / "stderr.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "aemg", "--log-level", "WARNING", "live", "--model", str(model_dir), "--replay",
           f"{corpus_cote_allard.path}:{rec.recording_id}", "--speed", "2", "--chunk", "16", "--view",
           "--view-port", "0", "--view-wait", "120", "--view-linger", "120"]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=tmp_path, preexec_fn=_default_sigint)
    driver = None
    try:
        end = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < end and proc.poll() is None:
            for line in err.read_text().splitlines():
                if "live view at http://" in line:
                    url = line.split("live view at ", 1)[1].split()[0]
            time.sleep(0.2)
        assert url, f"aemg live --view printed no URL: {err.read_text()}"
        assert url.startswith("http://127.0.0.1:")
        driver = _browser()
        driver.get(url)
        # the stream starts once the page is connected (--view-wait): decisions arrive while it runs
        _wait(driver, "return +document.getElementById('decision-count').textContent > 0", 90, "a decision")
        during = driver.execute_script("return document.getElementById('ended').hidden")
        driver.save_screenshot(str(_artifacts() / "live_view_first_decision.png"))  # mid-stream, for a person
        _wait(driver, "return !document.getElementById('ended').hidden", 90, "the end of the stream")
        page = driver.execute_script("""
            const $ = (id) => document.getElementById(id);
            const cv = $('traces'), px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
            let ink = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
            return {count: +$('decision-count').textContent, gesture: $('gesture').textContent,
                    status: $('status').textContent, card: $('decision').dataset.status,
                    rows: [...$('log').children].map((r) => [r.className, r.children[3].textContent]),
                    ended: $('ended').textContent, groups: +$('group-count').textContent,
                    events: +$('event-count').textContent, ink: ink, conn: $('conn').textContent};
        """)
        shot = _artifacts() / "live_view.png"
        shot.unlink(missing_ok=True)
        assert driver.save_screenshot(str(shot))
    finally:
        if driver is not None:
            driver.quit()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # ends --view-linger
        rc = proc.wait(timeout=60)
    assert rc == 0, err.read_text()
    assert during, "the stream had ended before the page showed its first decision"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(o["status"], o["event"], o["gesture"]) for o in lines] == [(d.status, d.event, d.gesture) for d in want]
    last = want[-1]
    assert page["count"] == len(want) > 0
    assert page["gesture"] == last.gesture and page["card"] == last.status
    assert page["status"].startswith(last.status)  # the status in words, not only in colour
    assert [r[0] for r in page["rows"]] == [d.status for d in reversed(want)][:len(page["rows"])]
    assert {r[0] for r in page["rows"]} >= {"provisional", "confirmed"} or len(page["rows"]) == 40
    assert page["events"] == len({d.event for d in want}) and page["groups"] > 0
    assert f"after {len(want)} decisions" in page["ended"] and page["conn"] == "stream ended"
    assert page["ink"] > 5000, "the canvas shows no traces"
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, len(data)
    import matplotlib.image

    img = matplotlib.image.imread(str(shot))
    assert img.shape[0] >= 600 and img.shape[1] >= 1000 and float(img[..., :3].std()) > 0.05


def test_help_describes_the_view(capsys):
    from aemg.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["live", "--help"])
    text = capsys.readouterr().out
    for opt in ("--view", "--view-port", "--view-wait", "--view-linger", "127.0.0.1"):
        assert opt in text, opt
