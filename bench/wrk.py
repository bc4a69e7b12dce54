"""wrk on loopback with a fixed duration and connection count; requests per second out."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

THREADS = 1
CONNECTIONS = 8
SECONDS = 3
# Cycles through the paths in a file (one per line): for mixed load on many feeds. The script's
# arguments (head, start): the first `head` paths are asked first in every run, then the rest cycles
# from its `start`-th path (0-based), so that successive runs can walk on through a list longer than
# one run gets through. wrk calls request() once before the first request it sends (the first path
# of every run never reached the app): that call gets the first path too, and is not counted.
PATHS_SCRIPT = """
local paths, i, head, start, first = {}, 0, 0, 0, true
for line in io.lines("%s") do paths[#paths + 1] = line end
init = function(args)
  head, start = tonumber(args[1] or "0"), tonumber(args[2] or "0")
end
request = function()
  if first then
    first = false
    return wrk.format("GET", paths[1])
  end
  i = i + 1
  local n = i
  if i > head then n = head + (start + i - head - 1) %% (#paths - head) + 1 end
  return wrk.format("GET", paths[n])
end
"""


class WrkError(RuntimeError):
    pass


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, *, headers: dict | None = None, seconds: int = SECONDS, connections: int = CONNECTIONS,
        threads: int = THREADS, paths_file: Path | None = None, head: int = 0, start: int = 0,
        expect_status: int = 200) -> float:
    """Requests per second; raises WrkError when any answer was not the expected kind (e.g. 429, 5xx).
    With `paths_file`, `head` and `start` as PATHS_SCRIPT takes them (one thread: each wrk thread walks alone)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if paths_file is not None:
        script = paths_file.with_suffix(".lua")
        script.write_text(PATHS_SCRIPT % paths_file)
        command += ["-s", str(script)]
    done = subprocess.run(command + [url] + (["--", str(head), str(start)] if paths_file is not None else []),
                          capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise WrkError(done.stderr or done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if rate is None:
        raise WrkError(done.stdout)
    # wrk counts 3xx as fine, so a 304 row is checked by the caller's expect_status below.
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    errors = re.search(r"Socket errors:.*", done.stdout)
    if bad:
        raise WrkError(f"{bad.group(1)} answers were errors for {url}:\n{done.stdout}")
    if errors and re.search(r"(read|write|timeout) [1-9]", errors.group(0)):
        raise WrkError(f"socket errors for {url}: {errors.group(0)}")
    return float(rate.group(1))
