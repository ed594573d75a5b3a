"""The tests' network guard (conftest.py) itself: a test that reaches another machine fails, even if it catches
the error."""

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


def test_a_swallowed_connection_attempt_still_fails_the_test(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import socket

        def test_falls_back_on_any_error():
            try:
                socket.create_connection(("example.com", 80), timeout=1)
            except Exception:
                pass  # a loader that treats every failure as "offline"

        def test_loopback_is_allowed():
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            socket.create_connection(server.getsockname(), timeout=1).close()
            server.close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*the test tried to reach [[]('example.com', 80)[]]: the tests must run offline*"])
