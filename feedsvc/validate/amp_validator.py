"""Run the official AMP validator (npm `amphtml-validator`) offline over AMP documents.

The validator's CLI normally fetches its engine, validator_wasm.js, from the AMP CDN; the pinned
`next` package ships a copy of that engine, so we hand the CLI that file and never touch the
network. Both packages are pinned in package.json / package-lock.json and installed by `npm ci`.
Starting node and loading the 4 MB engine costs about a second, so documents are validated in
batches: one node process for many files.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from feedsvc.validate.problems import Problem

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = Path("node_modules/amphtml-validator/cli.js")
ENGINE = Path("node_modules/next/dist/compiled/amphtml-validator/validator_wasm.js")
# Keeps one command line well under the kernel's argument limit.
BATCH_SIZE = 200
TIMEOUT_SECONDS = 300


class AmpValidatorUnavailable(RuntimeError):
    """node or the npm packages are missing: the validator cannot run at all."""


class AmpValidatorFailed(RuntimeError):
    """The validator ran but did not produce a result we can read."""


def _installation(root: Path) -> tuple[str, Path, Path]:
    node = shutil.which("node")
    if node is None:
        raise AmpValidatorUnavailable("the AMP validator needs node (Debian package `nodejs`) on PATH")
    cli, engine = root / CLI, root / ENGINE
    for needed in (cli, engine):
        if not needed.is_file():
            raise AmpValidatorUnavailable(
                f"the AMP validator is not installed ({needed} is missing): "
                f"run `make node_modules` or `npm ci` in {root}")
    return node, cli, engine


def _problem(message: dict) -> Problem:
    """One message of the official validator as a Problem: its code is the rule, its spec page cited."""
    text = message.get("message", "")
    if message.get("specUrl"):
        text += f" (see {message['specUrl']})"
    return Problem(message.get("code", ""), text, message.get("line") or None, message.get("col"),
                   message.get("severity", "ERROR").lower())


def _problems(result: dict) -> list[Problem]:
    return [_problem(message) for message in result.get("errors", [])]


def _run_batch(node: str, cli: Path, engine: Path, paths: list[Path]) -> list[list[Problem]]:
    command = [node, str(cli), "--validator_js", str(engine), "--format", "json", *map(str, paths)]
    # Exit status 1 only means "some document failed"; the JSON on stdout is the answer either way.
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    try:
        results = json.loads(done.stdout)
        return [_problems(results[str(path)]) for path in paths]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AmpValidatorFailed(
            f"amphtml-validator exited {done.returncode} without a JSON result: "
            f"{done.stderr.strip()[:2000] or done.stdout.strip()[:2000]}") from exc


def validate_amp_many(documents: Sequence[str], *, root: Path = REPO_ROOT) -> list[list[Problem]]:
    """The validator's errors and warnings for each document, in order; [] means it passed clean."""
    node, cli, engine = _installation(root)
    results: list[list[Problem]] = []
    with tempfile.TemporaryDirectory(prefix="amp-validate-") as tmp:
        paths = []
        for number, document in enumerate(documents):
            path = Path(tmp) / f"{number}.html"
            path.write_text(document, encoding="utf-8")
            paths.append(path)
        for start in range(0, len(paths), BATCH_SIZE):
            results.extend(_run_batch(node, cli, engine, paths[start:start + BATCH_SIZE]))
    return results


def validate_amp(html: str, *, root: Path = REPO_ROOT) -> list[Problem]:
    """The validator's errors and warnings for one document; [] means it passed clean."""
    return validate_amp_many([html], root=root)[0]


def errors_only(problems: Sequence[Problem]) -> list[Problem]:
    """The problems that make a document invalid AMP (warnings do not)."""
    return [problem for problem in problems if problem.severity == "error"]
