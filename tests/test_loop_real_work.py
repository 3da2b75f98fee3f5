"""loop.py: real work the loop can see (threads, executors, sockets) holds virtual time."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest
import uvloop
from loop_support import now_ms, run_virtual

from harn_async_trace import MockClock, virtual_loop_factory
from harn_async_trace.loop import anyio_backend_options, run


class TestInvisibleWork:
    @staticmethod
    def _thread_result(delay_s: float) -> Callable[[], Coroutine[Any, Any, int]]:
        async def main() -> int:
            loop = asyncio.get_running_loop()
            result: asyncio.Future[int] = loop.create_future()

            def work() -> None:
                time.sleep(delay_s)  # real work the loop cannot see
                def post() -> None:
                    if not result.done():
                        result.set_result(1)

                loop.call_soon_threadsafe(post)

            thread = threading.Thread(target=work)
            thread.start()
            try:
                async with asyncio.timeout(10):
                    await result
            finally:
                # Let the thread post before the loop closes (joining blocks the loop,
                # which is fine: it only ever waits delay_s).
                thread.join()
            return now_ms()

        return main

    def test_threshold_waits_for_thread_work(self, use_uvloop: bool) -> None:
        """With an autojump threshold, a plain thread finishing in time is not skipped past."""
        result = run(
            self._thread_result(0.02)(),
            clock=MockClock(),
            use_uvloop=use_uvloop,
            autojump_threshold=1.0,
        )
        assert result == 0

    def test_a_thread_started_by_the_program_holds_time_without_threshold(
        self, use_uvloop: bool
    ) -> None:
        """Issue 15: a plain thread that will call_soon_threadsafe is work the loop sees.

        While it really runs (here: sleeps 0.2 s of real time) virtual time
        holds still, so the 10 s timeout around it does not fire.
        """
        assert run_virtual(use_uvloop, self._thread_result(0.2)) == 0

    def test_executor_work_is_visible_without_threshold(self, use_uvloop: bool) -> None:
        """run_in_executor/to_thread work holds time still until it finishes."""

        async def main() -> int:
            async with asyncio.timeout(1):
                await asyncio.to_thread(time.sleep, 0.02)
            return now_ms()

        assert run_virtual(use_uvloop, main) == 0

    def test_threshold_still_jumps_when_truly_idle(self, use_uvloop: bool) -> None:
        """With a threshold, an idle loop jumps after about that much real time."""

        async def main() -> int:
            await asyncio.sleep(3600)
            return now_ms()

        real_start = time.perf_counter()
        result = run(main(), clock=MockClock(), use_uvloop=use_uvloop, autojump_threshold=0.05)
        assert result == 3_600_000
        assert 0.04 < time.perf_counter() - real_start < 2


def test_local_socket_round_trips_are_not_skipped(use_uvloop: bool) -> None:
    """Traffic over a local TCP socket is seen by the loop: no timeout fires spuriously."""

    async def main() -> tuple[int, float]:
        handler_done = asyncio.Event()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()
            handler_done.set()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        echoed = 0
        for i in range(100):
            writer.write(f"{i}\n".encode())
            await writer.drain()
            if await asyncio.wait_for(reader.readline(), 5) == f"{i}\n".encode():
                echoed += 1
        writer.close()
        await writer.wait_closed()
        await handler_done.wait()
        server.close()
        await server.wait_closed()
        return echoed, asyncio.get_running_loop().time()

    assert run_virtual(use_uvloop, main) == (100, 0.0)


class TestRealWorkIsSeen:
    """Issue 15: work the loop started holds virtual time still; what waits on the loop does not."""

    def test_anyio_worker_threads_hold_time(self, use_uvloop: bool) -> None:
        """anyio.to_thread has its own threads (not run_in_executor): timeouts around them hold."""

        async def main() -> tuple[int, int]:
            with anyio.fail_after(5):
                await anyio.to_thread.run_sync(time.sleep, 0.05)
            before = now_ms()

            def waits_on_the_loop() -> None:
                anyio.from_thread.run(anyio.sleep, 2)

            with anyio.fail_after(10):
                await anyio.to_thread.run_sync(waits_on_the_loop)
            return before, now_ms()

        clock = MockClock(start_wall_ms=0)
        options = anyio_backend_options(clock, use_uvloop=use_uvloop)

        async def in_anyio() -> tuple[int, int]:
            return await main()

        assert anyio.run(in_anyio, backend_options=options) == (0, 2_000)

    def test_executor_job_waiting_on_the_loop_times_out_like_a_real_loop(
        self, use_uvloop: bool
    ) -> None:
        """wait_for(job needing 4 loop seconds, timeout=1) times out at virtual 1 s; no deadlock."""

        async def main() -> tuple[str, int, int]:
            loop = asyncio.get_running_loop()

            def job() -> int:
                for _ in range(4):
                    asyncio.run_coroutine_threadsafe(asyncio.sleep(1), loop).result(30)
                return 4

            future = loop.run_in_executor(None, job)
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=1)
                outcome = "done"
            except TimeoutError:
                outcome = "timeout"
            at_timeout = now_ms()
            assert await future == 4
            return outcome, at_timeout, now_ms()

        assert run_virtual(use_uvloop, main) == ("timeout", 1_000, 4_000)

    def test_connecting_to_localhost_holds_time(self, use_uvloop: bool) -> None:
        """DNS for "localhost" (libuv pool on uvloop) and the connect take no virtual time."""

        async def main() -> int:
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            ticks = asyncio.create_task(asyncio.sleep(3600))
            for _ in range(20):
                async with asyncio.timeout(0.5):
                    _, writer = await asyncio.open_connection("localhost", port)
                writer.close()
            ticks.cancel()
            server.close()
            await server.wait_closed()
            return now_ms()

        assert run_virtual(use_uvloop, main) == 0

    def test_debug_mode_logs_no_jump_and_reprs_name_the_caller(
        self, use_uvloop: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """In debug mode no 'Executing ... took 3600 s' is logged, and tasks are created here."""

        async def main() -> str:
            task = asyncio.get_running_loop().create_task(asyncio.sleep(1))
            await asyncio.sleep(3600)
            await task
            return repr(task)

        caplog.set_level("WARNING", logger="asyncio")
        factory = virtual_loop_factory(MockClock(), use_uvloop=use_uvloop)
        with asyncio.Runner(debug=True, loop_factory=factory) as runner:
            text = runner.run(main())
        # A loaded machine may really take 0.1 s somewhere; a jump would say 3600 s.
        took = [float(x) for x in re.findall(r"took ([0-9.]+) seconds", caplog.text)]
        assert all(seconds < 100 for seconds in took), caplog.text
        assert "_vtime" not in text
        assert __file__.rsplit("/", 1)[-1] in text

    def test_virtual_uvloop_looks_like_uvloop(self) -> None:
        """Code that tells uvloop apart by module (anyio does) sees uvloop."""
        loop = virtual_loop_factory(MockClock(), use_uvloop=True)()
        try:
            assert type(loop).__module__ == uvloop.Loop.__module__
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
