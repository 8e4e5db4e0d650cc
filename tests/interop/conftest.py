"""Fixtures for the interop suite: a real Tributary broker process per test,
and a moto S3 server for the tutorial's weekly consumer.

Everything listens on 127.0.0.1 only. Every process started here is stopped by
its PID at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The tutorial's scripts live beside the repo, never inside it.
SEED_DIR = REPO.parent / "shared" / "seed"
DEFAULT_BIN = REPO / ".build" / "release" / "tributary"

BROKER_START_TIMEOUT = 30.0
BROKER_STOP_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (a graceful stop), wait up to ``timeout``, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            Broker._sigkill(proc)


class Broker:
    """One Tributary process bound to a fixed port and data dir.

    ``start()`` may be called again after ``stop()``/``kill()``: the same port
    and data dir are reused, and the log file is appended to.
    """

    def __init__(self, binary: Path, data_dir: Path, log_path: Path,
                 port: int | None = None, extra_args: tuple[str, ...] = ()):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    # -- properties ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [str(self.binary), "serve",
                "--listen", self.bootstrap,
                "--data-dir", str(self.data_dir),
                "--log-level", "info", *self.extra_args]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle ----------------------------------------------------------
    def start(self, timeout: float = BROKER_START_TIMEOUT) -> "Broker":
        if self.running:
            raise RuntimeError(f"broker pid {self.pid} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, cwd=str(self.data_dir.parent),
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                pytest.fail(f"tributary exited with status {rc} before accepting "
                            f"connections on {self.bootstrap}\n--- log tail ---\n"
                            f"{tail(self.log_text())}", pytrace=False)
            if port_accepts(self.port):
                return self
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"tributary did not accept TCP connections on {self.bootstrap} "
                    f"within {timeout:.0f}s\n--- log tail ---\n{tail(self.log_text())}",
                    pytrace=False)

    def stop(self, timeout: float = BROKER_STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        proc = self.proc
        stop_process(proc, timeout)
        self.proc = None
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL right away (a crash, as far as the broker can tell)."""
        if self.proc is None:
            return None
        proc = self.proc
        self._sigkill(proc)
        self.proc = None
        return proc.returncode

    @staticmethod
    def _sigkill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def restart(self) -> "Broker":
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        return f"<Broker {self.bootstrap} pid={self.pid} data_dir={self.data_dir}>"


# --- failure reporting ------------------------------------------------------

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep


def _test_failed(request) -> bool:
    node = request.node
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


# --- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="session")
def tributary_bin() -> Path:
    path = Path(os.environ.get("TRIBUTARY_BIN") or DEFAULT_BIN)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"tributary binary not found or not executable: {path}\n"
                    "Build it with `swift build -c release --product tributary` or set "
                    "TRIBUTARY_BIN to its path (scripts/test does both).", pytrace=False)
    return path


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    if not (SEED_DIR / "producer.py").is_file():
        pytest.fail(f"tutorial scripts not found in {SEED_DIR} (expected beside the repo "
                    "as ../shared/seed)", pytrace=False)
    return SEED_DIR


@pytest.fixture
def broker_factory(tributary_bin, tmp_path, request):
    """Returns ``make(name='broker', port=None, extra_args=(), start=True)``.

    Each broker gets ``tmp_path/<name>/data`` and ``tmp_path/<name>/broker.log``.
    All brokers made here are stopped at teardown (SIGTERM, then SIGKILL)."""
    made: list[Broker] = []

    def make(name: str = "broker", port: int | None = None,
             extra_args: tuple[str, ...] = (), start: bool = True) -> Broker:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        b = Broker(tributary_bin, root / "data", root / "broker.log",
                   port=port, extra_args=extra_args)
        made.append(b)
        if start:
            b.start()
        return b

    yield make

    failed = _test_failed(request)
    for b in made:
        try:
            status = b.stop(timeout=10)
        except Exception as exc:  # never leave a process behind
            status = f"error stopping: {exc!r}"
            if b.proc is not None and b.proc.poll() is None:
                os.kill(b.proc.pid, signal.SIGKILL)
        if failed:
            print(f"\n--- {b!r} exit status {status}; log tail ({b.log_path}) ---\n"
                  f"{tail(b.log_text(), 80)}", file=sys.stderr)


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A freshly started broker on its own port and empty data dir."""
    return broker_factory()


@pytest.fixture
def moto(tmp_path):
    """A moto S3 server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    log_path = tmp_path / "moto.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not port_accepts(port):
            if proc.poll() is not None:
                pytest.fail(f"moto server exited with {proc.returncode}:\n"
                            f"{tail(log_path.read_text(errors='replace'))}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"moto server did not listen on {port} within 30s:\n"
                            f"{tail(log_path.read_text(errors='replace'))}", pytrace=False)
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
