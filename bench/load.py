"""``python -m bench.load``: N employees chat at once while an admin adds and removes documents.

The app runs as ``streamlit run streamlit_app.py`` on 127.0.0.1; each employee is a
Playwright browser context in Debian's chromium (its own cookies, so its own Streamlit
session over its own WebSocket) that asks ``--questions`` questions, one after another.
Meanwhile an admin adds and removes a document in a loop with ``python -m ingest`` (another
process on the same data dir, as the command line or a second replica would).

The documents are generated: every line of a file starts with ``[its name]``, so a source
shown under an answer whose snippet carries another file's tag is a wrong-source hit.

Per N it reports: questions answered, errors, wrong-source hits, time to the first visible
status, to the first token and to the whole answer (p50/p95, from pressing Enter), and the
app's peak memory (the Streamlit process and its children). ``--backend openai`` (default)
starts ``python -m llama_cpp.server`` with SmolLM2-135M (or uses ``--llm-url``);
``--backend embedded`` uses the in-process Qwen model (one answer at a time, 20-60 s each
on 2 cores). ``--soak-minutes M`` keeps N employees asking for M minutes and reports memory
growth and errors.

    python -m bench.load --n 1 4 8 16 --backend openai
    python -m bench.load --n 4 --soak-minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import REPO_ROOT
from bench.common import machine, write_section
from tests.servers import free_port, llama_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking"]  # fmt: skip
MODEL_CACHE = REPO_ROOT / "data" / "store" / "models"
ANSWER_TIMEOUT_S = 600
# what counts as the first visible status in the answer's bubble: a notice (the queue
# position), a status or spinner, sources, or the first words
STATUS = ", ".join(
    f'[data-testid="{t}"]'
    for t in ("stAlert", "stStatusWidget", "stSpinner", "stExpander", "stCaptionContainer",
              "stMarkdownContainer")
)  # fmt: skip

TOPICS = {
    "leave.md": ("annual leave", "Full-time staff get {n} days of annual leave per year."),
    "parking.md": ("parking", "Parking permits are issued by the front desk on floor {n}."),
    "laptops.md": ("laptops", "Laptops are replaced every {n} years by the IT team."),
    "travel.md": ("travel", "The travel allowance is {n} EUR per day abroad."),
    "canteen.md": ("canteen", "The canteen serves vegetarian lunch on day {n} of the week."),
    "gym.md": ("gym", "The company gym opens at 0{n}:30 on weekdays."),
}
QUESTIONS = [
    "How many days of annual leave do full-time staff get?",
    "Who issues parking permits?",
    "How often are laptops replaced?",
    "What is the travel allowance per day abroad?",
    "When does the canteen serve vegetarian lunch?",
    "When does the company gym open?",
]


def write_docs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (_, line) in TOPICS.items():
        body = "\n".join(f"[{name}] {line.format(n=i % 9 + 1)}" for i in range(12))
        (folder / name).write_text(f"# {name}\n\n{body}\n")


@dataclass
class Asked:
    question: str
    status_s: float | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    error: str = ""
    wrong_sources: list[str] = field(default_factory=list)


def _rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB."""
    total = 0
    try:
        children = subprocess.run(
            ["ps", "-o", "rss=", "--ppid", str(pid)], capture_output=True, text=True
        ).stdout.split()
        own = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+)", own).group(1))
        total += sum(int(c) for c in children)
    except (OSError, AttributeError, ValueError):
        pass
    return total / 1024


class MemoryWatch:
    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(_rss_mib(self.pid))

    def stop(self) -> tuple[float, float, float]:
        """(warm, peak, last) in MiB; warm = a fifth into the run (the model and the
        sessions loaded), so growth = last - warm is what the load itself added."""
        self._stop.set()
        self._t.join()
        s = self.samples or [0.0]
        return s[len(s) // 5], max(s), s[-1]


class Admin:
    """Adds a document with ``python -m ingest``, removes it, again, until stopped."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.rounds = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _ingest(self, *args: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "ingest", *args],
            cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if proc.returncode != 0:
            self.failures.append(proc.stderr[-300:])

    def _run(self) -> None:
        while not self._stop.is_set():
            doc = self.folder / f"memo_{self.rounds}.md"
            doc.write_text(f"# memo\n\n[memo_{self.rounds}.md] The printer on floor 3 is fixed.\n")
            self._ingest(str(doc), "--quiet", "--lock-timeout", "120")
            self._stop.wait(2)
            self._ingest("--remove", doc.name, "--lock-timeout", "120")
            self.rounds += 1
            self._stop.wait(2)

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=600)


def _tags_wrong(reply_text: str) -> list[str]:
    """Passages shown under another file's name. The chat shows a citation as a header
    "[n] NAME" with its quotes below it, and a refusal's closest passage as its quote with
    "— NAME" below it; every line of a generated document carries "[its name]"."""
    wrong: list[str] = []
    current, pending = None, []
    for line in reply_text.splitlines():
        line = line.strip()
        head = re.match(r"^\[\d+\]\s+(\S+)", line)
        if head:
            current, pending = head.group(1).rstrip(","), []
            continue
        by = re.match(r"^— (\S+)", line)
        if by:
            name = by.group(1).rstrip(",")
            wrong += [f"{name} shows {tag}" for tag in pending if tag != name]
            current, pending = None, []
            continue
        tags = re.findall(r"\[([\w.-]+\.md)\]", line)
        if current:
            wrong += [f"{current} shows {tag}" for tag in tags if tag != current]
        else:
            pending += tags
    return wrong


# one look at the page per poll, in the page itself: with 16 employees polling ten times a
# second, a Playwright round trip per element (seven of them) cost the model's cores more
# than the app did
LOOK = """([before, status]) => {
  const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
  if (messages.length < before + 2) return null;
  const reply = messages[before + 1];
  const body = [...reply.querySelectorAll('[class*="st-key-answer_"]')];
  const app = document.querySelector('[data-testid="stApp"]');
  return {
    text: reply.innerText.trim(),
    status: reply.querySelector(status) !== null,
    shown: body.map((e) => e.innerText).join(" ").trim(),
    error: reply.querySelector(
      '[data-testid="stException"], [data-testid="stAlertContentError"]') !== null,
    state: app ? app.getAttribute("data-test-script-state") : null,
  };
}"""
POLL_S = 0.1  # between looks, until the answer is done
QUEUED_POLL_S = 1.0  # while the queue's notice shows: its number changes every few seconds


async def _ask(page, question: str) -> Asked:
    asked = Asked(question)
    before = await page.get_by_test_id("stChatMessage").count()
    box = page.get_by_test_id("stChatInputTextArea")
    await box.fill(question)
    started = time.monotonic()
    await box.press("Enter")
    deadline = started + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        look = await page.evaluate(LOOK, [before, STATUS])
        pause = POLL_S
        if look is not None:
            now = time.monotonic() - started
            if asked.status_s is None and look["status"]:
                asked.status_s = now  # something for the person to read, not just the bubble
            # the answer's own box (app.ui.chat keys it answer_<i>), not the status above it
            shown = look["shown"]
            if "ahead of yours" in shown:  # the queue's notice, in the answer's box until its turn
                shown, pause = "", QUEUED_POLL_S
            if shown and asked.first_token_s is None:
                asked.first_token_s = now
            if look["error"]:
                asked.error = look["text"][:200]
                asked.total_s = now
                return asked
            # the run that answers has ended (Streamlit's own mark on the page; the
            # "Running" widget is hidden by toolbarMode viewer)
            if look["state"] == "notRunning" and shown and "▌" not in shown:
                asked.total_s = now
                asked.wrong_sources = _tags_wrong(look["text"])
                return asked
        await asyncio.sleep(pause)
    asked.error = f"no answer within {ANSWER_TIMEOUT_S} s"
    return asked


async def _employee(browser, url: str, questions: list[str], until: float | None) -> list[Asked]:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(240_000)
    out: list[Asked] = []
    try:
        await page.goto(url)
        await page.get_by_test_id("stChatInputTextArea").wait_for()
        i = 0
        while True:
            out.append(await _ask(page, questions[i % len(questions)]))
            i += 1
            if until is None and i >= len(questions):
                break
            if until is not None and time.monotonic() >= until:
                break
    except Exception as exc:  # noqa: BLE001 - counted as an error of this employee
        out.append(Asked("(session)", error=f"{type(exc).__name__}: {exc}"[:200]))
    finally:
        await context.close()
    return out


async def _crowd(url: str, n: int, per: int, soak_s: float | None) -> list[Asked]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        until = time.monotonic() + soak_s if soak_s else None
        plans = [[QUESTIONS[(e + q) % len(QUESTIONS)] for q in range(per)] for e in range(n)]
        groups = await asyncio.gather(*(_employee(browser, url, p, until) for p in plans))
        await browser.close()
    return [a for g in groups for a in g]


@contextlib.contextmanager
def streamlit_app(env: dict[str, str], log: Path):
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                    break
            time.sleep(0.5)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _pct(values: list[float], p: float) -> str:
    if not values:
        return "-"
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return f"{values[k]:.1f}"


def _row(backend: str, n: int, asked: list[Asked], memory, admin: Admin, wall: float) -> str:
    first, peak, last = memory
    ok = [a for a in asked if not a.error]

    def p50_95(values: list[float | None]) -> str:
        got = [v for v in values if v is not None]
        return f"{_pct(got, 50)} / {_pct(got, 95)}"

    return (
        f"| {backend} | {n} | {len(ok)}/{len(asked)} | {sum(bool(a.error) for a in asked)} | "
        f"{sum(len(a.wrong_sources) for a in asked)} | {p50_95([a.status_s for a in ok])} | "
        f"{p50_95([a.first_token_s for a in ok])} | {p50_95([a.total_s for a in ok])} | "
        f"{peak:.0f} ({last - first:+.0f}) | {admin.rounds} ({len(admin.failures)}) | {wall:.0f} |"
    )


def run(args: argparse.Namespace) -> str:
    root = Path(tempfile.mkdtemp(prefix="bench-load-"))
    docs = root / "docs"
    write_docs(docs)
    env = dict(
        os.environ,
        RAG_DATA_DIR=str(root / "store"),
        RAG_MODEL_DIR=str(MODEL_CACHE),
        RAG_SETTINGS_FILE=str(root / "none.toml"),
        HF_HUB_OFFLINE="1",
        RAG_MAX_NEW_TOKENS=str(args.max_new_tokens),
    )
    subprocess.run(
        [sys.executable, "-m", "ingest", str(docs), "--quiet"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    rows = []
    with contextlib.ExitStack() as stack:
        if args.backend == "openai":
            url = args.llm_url or stack.enter_context(llama_server(root, threads=args.llm_threads))
            env.update(RAG_LLM_BACKEND="openai", RAG_LLM_BASE_URL=url, RAG_LLM_MODEL="smollm2")
        else:
            env.update(RAG_LLM_BACKEND="embedded")
        for n in args.n:
            (root / "admin").mkdir(exist_ok=True)
            with streamlit_app(env, root / f"streamlit-{n}.log") as (app_url, pid):
                watch = MemoryWatch(pid)
                admin = Admin(env, root / "admin")
                started = time.monotonic()
                soak_s = args.soak_minutes * 60 if args.soak_minutes else None
                asked = asyncio.run(_crowd(app_url, n, args.questions, soak_s))
                wall = time.monotonic() - started
                admin.stop()
                first, peak, last = watch.stop()
            rows.append(_row(args.backend, n, asked, (first, peak, last), admin, wall))
            print(rows[-1], flush=True)
            for a in asked:
                if a.error or a.wrong_sources:
                    print(f"  {a.question}: {a.error} {a.wrong_sources}", flush=True)
            for failure in admin.failures:
                print(f"  admin: {failure}", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    header = (
        "| backend | N | answered | errors | wrong sources | first status s p50/p95 | "
        "first token s p50/p95 | whole answer s p50/p95 | app memory MiB peak (growth after warm-up) | "
        "admin add+remove rounds (failed) | wall s |\n|" + " --- |" * 11
    )
    soak = f", soak {args.soak_minutes:g} min" if args.soak_minutes else ""
    body = (
        f"## Load: `python -m bench.load --n {' '.join(map(str, args.n))} --backend {args.backend}"
        f"{' --soak-minutes ' + str(args.soak_minutes) if args.soak_minutes else ''}`\n\n"
        f"Machine: {machine()}. {args.questions} questions per employee{soak}; max "
        f"{args.max_new_tokens} new tokens; model: "
        f"{'SmolLM2-135M via python -m llama_cpp.server' if args.backend == 'openai' else 'embedded Qwen2.5-Coder-1.5B'}"
        f"; an admin adds and removes a document with `python -m ingest` throughout. Times "
        "from pressing Enter, in a Playwright chromium context per employee.\n\n"
        f"{header}\n" + "\n".join(rows)
    )
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--questions", type=int, default=3, help="per employee")
    parser.add_argument("--backend", choices=["openai", "embedded"], default="openai")
    parser.add_argument(
        "--llm-url", help="an OpenAI-compatible server (default: start llama.cpp's)"
    )
    parser.add_argument("--llm-threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    body = run(args)
    print(body)
    if not args.no_write:
        write_section(f"load-{args.backend}{'-soak' if args.soak_minutes else ''}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
