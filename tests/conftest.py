"""Shared test configuration: TensorFlow backend by default, the offline data root, seeds, no network."""

import ipaddress
import os
import socket

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir():
    """The offline data root: $KERAS_CROSR_DATA, else ../shared/data beside the checkout, else None."""
    candidates = [os.environ.get("KERAS_CROSR_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MANIFEST.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir():
    """Path of the real offline data sets; skips the test with the reason when they are absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("the complete offline data folder (files listed in DATA.md, recognised by its MANIFEST.md) was "
                    "not found: set KERAS_CROSR_DATA or place ../shared/data beside the checkout")
    return root


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.backend.clear_session(free_memory=False)  # gc.collect() would add ~0.3 s to every test


class NetworkAccessError(RuntimeError):
    """A test tried to reach another machine; the tests must run offline (a RuntimeError, not an OSError, so
    that code treating OSError as "offline, fall back" cannot swallow it)."""


def _is_loopback(address):
    """Whether a socket address stays on this machine: a unix socket path, localhost or a loopback IP."""
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:  # any other host name
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


@pytest.fixture(autouse=True)
def network_attempts(monkeypatch):
    """Makes every connection from the test process to another machine raise NetworkAccessError, and fails the
    test afterwards even where the code under test caught that error (a loader that falls back on any failure
    would otherwise pass); loopback and unix sockets (the local ports of tests/test_distribute.py) still work.
    Subprocesses are not affected. Yields the list of refused addresses (a test of the guard clears it)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    attempts = []

    def check(address):
        if not _is_loopback(address):
            attempts.append(address)
            raise NetworkAccessError(f"network access to {address!r} in a test: the tests must run offline")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    real_create_connection = socket.create_connection

    def create_connection(address, *args, **kwargs):
        check(address)  # before the DNS look-up of a host name
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield attempts
    if attempts:
        pytest.fail(f"the test tried to reach {attempts}: the tests must run offline", pytrace=False)
