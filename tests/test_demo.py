"""`outagebot demo` replays a real outage offline and shows the whole alert lifecycle."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def test_demo_shows_post_edits_thread_and_resolution(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DISCORD_", "SLACK_"))
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "demo",
        "--speed",
        "3000",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), timeout=120)
    out, err = out_bytes.decode(), err_bytes.decode()
    assert process.returncode == 0, err
    assert "Traceback" not in out + err
    assert out.count("📣 [alert #m1]") == 1  # one message...
    assert (
        out.count("✏️  [alert #m1 edited]") == 5
    )  # ...edited for 3 updates, resolution, postmortem
    assert out.count("↳ [thread of #m1]") == 5
    assert "Resolved after 1 h 20 min." in out
    assert "Between 13:25 and 14:43 PT today" in out  # the postmortem, quoted
    assert not any(tmp_path.iterdir())  # nothing left behind: the demo used a temporary database
