"""karaoke-bot's ``separate`` side by side with the Demucs command line users run instead.

People who want a karaoke track today run ``python -m demucs.separate --two-stems vocals
--mp3``. This script times that and ``karaoke-bot separate`` the way a user meets them:
whole processes, from start to exit (interpreter start, imports, model loading, decoding,
the model, encoding, writing), on the same excerpt of real music and the same model
folder: a random model of the exact pretrained ``htdemucs`` architecture (weights do not
change cost) saved in Demucs' ``--repo`` layout.

- (a) ``python -m demucs.separate --repo DIR -n htdemucs --two-stems vocals --mp3``,
  with Demucs' own defaults otherwise (``--shifts 1``: printed, never changed silently);
- (b) ``karaoke-bot separate`` with ``--precision fp32``;
- (c) ``karaoke-bot separate`` with the default precision (``auto``: bf16 where the CPU
  computes it natively).

Runs are interleaved (a, b, c; then b, c, a; ...) so that drift from other work on the
machine spreads over all three. Every karaoke-bot run gets a fresh data folder, so its
result cache never answers a later run. Each child's peak RSS comes from ``os.wait4`` on
that child alone; the children are started before this process imports torch, because
Linux hands a child its parent's high-water mark at ``exec``. For reference,
``apply_model`` alone is timed in this process on the decoded excerpt, fp32 and bf16.

Targets on the 2-core development machine: c/a <= 0.45 (the default karaoke-bot at most
45 % of the Demucs CLI's wall time; issue 26) and b/a <= 1.00 (even in fp32, not
slower). With ``--background-load N`` every round also runs the three beside N busy-loop
processes (``background_load.py``), interleaved with the idle runs: c/a under that load
should stay within 10 % of its idle value.

Run it on an otherwise idle machine. Other work taking turns on the cores slows torch's
threads unevenly (a preempted thread holds the others at the next barrier): with a load
average of about 3 on 2 cores, Demucs runs took 110 s that take 28 s on a quiet machine,
which made both ratios look twice as good as they are. The table therefore also shows
each child's CPU time, and a warning is printed when the load average says others were
busy.

    python benchmarks/versus_demucs.py                      # 60 s excerpt, 3 runs each
    python benchmarks/versus_demucs.py --json /tmp/versus.json
    python benchmarks/versus_demucs.py --quick              # tiny model, 10 s, 1 run
    python benchmarks/versus_demucs.py --background-load 2  # idle and beside 2 busy loops
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only torch-free modules at import time: see "peak RSS" in the module docstring.
from background_load import busy_loops

from separation.audio.ffmpeg import find_ffmpeg

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MODEL_NAME = "htdemucs"
TARGETS = {"b/a": 1.00, "c/a": 0.45}
LOADED_DRIFT = 0.10
"""Under ``--background-load`` the c/a ratio may grow by at most this fraction of its idle value."""
STDERR_TAIL_CHARS = 3000


@dataclass(frozen=True)
class Contender:
    """One of the three command lines: how to run it in a fresh folder, what it writes."""

    key: str
    label: str
    command: Callable[[Path], list[str]]
    """The argv for a run in the given fresh folder."""
    outputs: Callable[[Path], list[Path]]
    """The files a successful run in that folder must have written."""
    fresh_cache: Callable[[Path], Path] | None = None
    """The result cache a run in that folder uses (must be new), for karaoke-bot."""


@dataclass
class RunResult:
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float
    """User + system time of the child (its threads together): unlike the wall time,
    it barely grows when other work takes turns on the cores."""


@dataclass
class Figures:
    runs: list[RunResult] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [run.seconds for run in self.runs]

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def peak_rss_mib(self) -> float:
        return max(run.peak_rss_mib for run in self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)


def cut_excerpt(ffmpeg: str, source: Path, start: float, seconds: float, target: Path) -> None:
    """``seconds`` of ``source`` from ``start`` into ``target`` (MP3 320k or WAV by suffix)."""
    codec = ["-c:a", "libmp3lame", "-b:a", "320k"] if target.suffix == ".mp3" else []
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", str(start), "-i", str(source),
         "-t", str(seconds), "-map", "0:a:0", *codec, "-y", str(target)],
        check=True,
    )  # fmt: skip


def child_environment() -> dict[str, str]:
    """This environment, the same for every child, without karaoke-bot's overrides.

    ``KARAOKE_DATA_DIR`` or ``KARAOKE_DEVICE`` in the caller's shell would override the
    generated config (and share a result cache between runs); thread variables such as
    ``OMP_NUM_THREADS`` are passed through unchanged, to all three alike. The checkout
    goes first on ``PYTHONPATH`` (for all three too), so ``-m bot.cli.main`` runs this
    tree's code even where it is not installed.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("KARAOKE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_child(
    command: list[str], folder: Path, env: dict[str, str]
) -> tuple[float, int, resource.struct_rusage]:
    """Wall seconds, exit status and resource usage of one process, reaped with ``wait4``.

    ``wait4`` gives this child's own rusage; ``RUSAGE_CHILDREN`` would be the maximum over
    every child reaped so far. Output goes to files (a pipe nobody reads could block the
    child) and is read back only when the run failed.
    """
    with (folder / "stdout.txt").open("wb") as stdout, (folder / "stderr.txt").open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=stdout, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return seconds, process.returncode, usage


def check_run(contender: Contender, folder: Path, exit_status: int) -> None:
    """Fail loudly, with the end of the child's stderr, unless it wrote what it should."""
    problems = [] if exit_status == 0 else [f"exit status {exit_status}"]
    for path in contender.outputs(folder):
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"missing or empty output {path}")
    if contender.fresh_cache is not None:
        cache = contender.fresh_cache(folder)
        if not cache.is_dir() or not any(cache.rglob("*")):
            problems.append(f"the run left nothing in its fresh result cache {cache}")
    if problems:
        tail = (folder / "stderr.txt").read_text(errors="replace")[-STDERR_TAIL_CHARS:]
        raise SystemExit(
            f"{contender.label} failed: {'; '.join(problems)}\n"
            f"command: {' '.join(contender.command(folder))}\n--- stderr (tail) ---\n{tail}"
        )


def contenders(excerpt: Path, repo: Path, device: str) -> list[Contender]:
    """The three command lines, all through this interpreter (``sys.executable -m``)."""
    track = excerpt.name.rsplit(".", 1)[0]

    def demucs_command(folder: Path) -> list[str]:
        return [
            sys.executable, "-m", "demucs.separate", "--repo", str(repo), "-n", MODEL_NAME,
            "--two-stems", "vocals", "--mp3", "-d", device, "-o", str(folder / "out"),
            str(excerpt),
        ]  # fmt: skip

    def demucs_outputs(folder: Path) -> list[Path]:
        stems = folder / "out" / MODEL_NAME / track
        return [stems / "no_vocals.mp3", stems / "vocals.mp3"]

    def karaoke_command(precision: str | None) -> Callable[[Path], list[str]]:
        def command(folder: Path) -> list[str]:
            flags = ["--precision", precision] if precision else []
            return [
                sys.executable, "-m", "bot.cli.main", "separate", str(excerpt),
                "--config", str(folder / "config.toml"), "-o", str(folder / "out"), *flags,
            ]  # fmt: skip

        return command

    def karaoke_outputs(folder: Path) -> list[Path]:
        return [folder / "out" / f"{track} - {name}.mp3" for name in ("instrumental", "vocals")]

    def karaoke_cache(folder: Path) -> Path:
        return folder / "data" / "cache"

    return [
        Contender("a", "(a) demucs.separate", demucs_command, demucs_outputs),
        Contender(
            "b", "(b) karaoke-bot fp32", karaoke_command("fp32"), karaoke_outputs, karaoke_cache
        ),
        Contender(
            "c", "(c) karaoke-bot auto", karaoke_command(None), karaoke_outputs, karaoke_cache
        ),
    ]


def write_config(folder: Path, repo: Path, device: str) -> None:
    """A config with karaoke-bot's defaults but the model folder, the device and a fresh
    data folder (database, result cache, tmp) inside this run's folder."""
    (folder / "config.toml").write_text(
        f'[general]\ndata_dir = "{folder / "data"}"\n\n'
        f'[model]\nname = "{MODEL_NAME}"\nrepo = "{repo}"\ndevice = "{device}"\n',
        encoding="utf-8",
    )


def race(
    entrants: list[Contender],
    runs: int,
    scratch: Path,
    repo: Path,
    device: str,
    loads: list[int],
) -> dict[int, dict[str, Figures]]:
    """Every contender ``runs`` times under each of ``loads`` (busy-loop processes
    beside it; 0 is idle), interleaved: each round runs all of them under each load in
    turn, the contenders' order rotated each round."""
    env = child_environment()
    figures = {load: {entrant.key: Figures() for entrant in entrants} for load in loads}
    for round_index in range(runs):
        rotation = round_index % len(entrants)
        for load in loads:
            with busy_loops(load):
                for entrant in entrants[rotation:] + entrants[:rotation]:
                    folder = scratch / f"run-{round_index + 1}-load-{load}-{entrant.key}"
                    folder.mkdir()  # fresh: a leftover folder (and its cache) would be an error
                    if entrant.fresh_cache is not None:
                        write_config(folder, repo, device)
                    seconds, status, usage = run_child(entrant.command(folder), folder, env)
                    check_run(entrant, folder, status)
                    cpu = usage.ru_utime + usage.ru_stime
                    result = RunResult(seconds, usage.ru_maxrss / 1024, cpu)  # maxrss: KiB
                    figures[load][entrant.key].runs.append(result)
                    print(
                        f"  run {round_index + 1}, load {load}: {entrant.label:<22} "
                        f"{seconds:7.2f} s  {result.peak_rss_mib:6.0f} MiB  CPU {cpu:6.2f} s"
                    )
    return figures


def child_output(code: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def bare_child_rss_mib(env: dict[str, str], scratch: Path) -> float:
    """Peak RSS of ``python -c pass``: the floor, and what a child inherits from us."""
    _, _, usage = run_child([sys.executable, "-c", "pass"], scratch, env)
    return usage.ru_maxrss / 1024


def make_model(folder: Path, quick: bool) -> None:
    """(In a child process.) Save the random model; print its parameter count."""
    from separation.model.random_models import (
        HTDEMUCS_KWARGS,
        TINY_HTDEMUCS_KWARGS,
        build_htdemucs,
        save_repo_model,
    )

    network = build_htdemucs(TINY_HTDEMUCS_KWARGS if quick else HTDEMUCS_KWARGS)
    save_repo_model(folder, MODEL_NAME, [network])
    print(sum(parameter.numel() for parameter in network.parameters()))


def demucs_options(argv: list[str], model_segment: float) -> dict[str, Any]:
    """What ``demucs.separate`` does with ``argv``: its parser's values, defaults included."""
    from demucs.separate import get_parser

    options = get_parser().parse_args(argv)  # type: ignore[no-untyped-call]
    return {
        "device": options.device,
        "shifts": options.shifts,
        "overlap": options.overlap,
        "split": options.split,
        "segment": options.segment if options.segment is not None else model_segment,
        "jobs": options.jobs,
        "mp3_bitrate": options.mp3_bitrate,
        "mp3_preset": options.mp3_preset,
        "clip_mode": options.clip_mode,
        "other_method": options.other_method,
    }


def karaoke_options(argv: list[str]) -> dict[str, Any]:
    """What ``karaoke-bot separate`` does with ``argv`` and its generated config."""
    import torch

    from bot.cli.main import build_parser, load_cli_settings
    from bot.process.backend import default_batch_size
    from separation.model.loading import resolve_device
    from separation.model.precision import resolve_precision

    settings = load_cli_settings(build_parser().parse_args(argv))
    device: torch.device = resolve_device(settings.model.device)
    return {
        "device": str(device),
        "shifts": settings.model.shifts,
        "overlap": settings.model.overlap,
        "precision": f"{settings.model.precision} -> "
        f"{resolve_precision(settings.model.precision, device)}",
        "batch_size": settings.pool.batch_size or default_batch_size(device),
        "mp3_bitrate": settings.output.mp3_bitrate,
    }


def segment_count(samples: int, segment_seconds: float, overlap: float, pad: int = 0) -> int:
    """Forward passes ``apply_model`` makes over ``samples`` (+ ``pad``) at 44.1 kHz."""
    segment = int(44100 * segment_seconds)
    stride = int((1 - overlap) * segment)
    return len(range(0, samples + pad, stride))


def reference(repo: Path, excerpt: Path, scratch: Path, ffmpeg: str) -> dict[str, float]:
    """``apply_model`` alone on the decoded, normalised excerpt: fp32, then bf16 autocast.

    Each after a warm-up on one segment's worth of audio (kernels chosen, memory
    allocated), which costs far less than a second whole run and changes nothing after.
    """
    import torch
    from demucs.apply import apply_model
    from demucs.htdemucs import HTDemucs

    from separation.audio.decode import AudioLimits
    from separation.model.loading import load_model
    from separation.pipeline import PipelineConfig, decode_input
    from separation.workdir import job_directory

    device = torch.device("cpu")
    model = load_model(MODEL_NAME, repo=repo, device=device)
    network = model.sub_models[0]
    if not isinstance(network, HTDemucs):
        raise SystemExit(f"expected an HTDemucs model, got {type(network).__name__}")
    config = PipelineConfig(
        ffmpeg=ffmpeg, tmp_root=scratch / "tmp", limits=AudioLimits(max_duration_seconds=3600)
    )
    with job_directory(scratch / "tmp") as workdir:
        audio = decode_input(excerpt, workdir, config=config, sample_rate=model.samplerate)
        wav = torch.from_numpy(audio.read_all())
    mix = ((wav - audio.mean) / (audio.std + 1e-8))[None]
    warm_up = mix[..., : int(float(model.segments[0]) * model.samplerate)]
    figures = {"model_segment_seconds": float(model.segments[0]), "samples": mix.shape[-1]}
    precisions: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "fp32": contextlib.nullcontext,
        "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    }
    for label, precision in precisions.items():
        with precision():
            apply_model(network, warm_up, shifts=0, split=True, overlap=0.25, device=device)
            started = time.perf_counter()
            apply_model(network, mix, shifts=0, split=True, overlap=0.25, device=device)
            figures[label] = time.perf_counter() - started
    return figures


def verdict(ratio: float, target: float) -> str:
    return "OK" if ratio <= target else "MISSED"


def condition(load: int) -> str:
    return "idle" if load == 0 else f"beside {load} busy-loop process(es)"


def ratio_table(
    entrants: list[Contender], figures: dict[str, Figures]
) -> dict[str, dict[str, float | str]]:
    """Print one condition's table and ratios against their targets; return the ratios."""
    print(f"{'':<24}{'min s':>8}{'median s':>10}{'peak RSS MiB':>14}{'CPU s':>8}   runs (s)")
    for entrant in entrants:
        result = figures[entrant.key]
        runs = ", ".join(f"{seconds:.2f}" for seconds in result.times)
        print(
            f"{entrant.label:<24}{result.best:8.2f}{result.median:10.2f}"
            f"{result.peak_rss_mib:14.0f}{result.median_cpu:8.1f}   {runs}"
        )
    ratios: dict[str, dict[str, float | str]] = {}
    for key, target in TARGETS.items():
        mine, theirs = figures[key[0]], figures["a"]
        on_median, on_min = mine.median / theirs.median, mine.best / theirs.best
        ratios[key] = {"median": on_median, "min": on_min, "target": target}
        ratios[key]["verdict"] = verdict(on_median, target)
        print(
            f"ratio {key}: {on_median:.3f} on medians, {on_min:.3f} on mins  "
            f"(target <= {target:.2f}: {verdict(on_median, target)} on medians, "
            f"{verdict(on_min, target)} on mins)"
        )
    return ratios


def load_drift(ratios: dict[int, dict[str, dict[str, float | str]]]) -> dict[str, float]:
    """How much c/a grew under each load against idle (medians), printed and returned."""
    idle = float(ratios[0]["c/a"]["median"])
    drift = {}
    for load, by_key in ratios.items():
        if load == 0:
            continue
        loaded = float(by_key["c/a"]["median"])
        drift[str(load)] = loaded / idle - 1
        print(
            f"c/a {condition(load)}: {loaded:.3f} against {idle:.3f} idle, "
            f"{100 * (loaded / idle - 1):+.1f} % (target within {100 * LOADED_DRIFT:.0f} %: "
            f"{'OK' if loaded / idle - 1 <= LOADED_DRIFT else 'MISSED'})"
        )
    return drift


def report(
    entrants: list[Contender],
    figures: dict[int, dict[str, Figures]],
    facts: dict[str, Any],
    json_path: Path | None,
) -> None:
    """Print the tables, the ratios against their targets and the context; write JSON."""
    ratios = {}
    for load, by_key in figures.items():
        print(f"\n{condition(load)}:")
        ratios[load] = ratio_table(entrants, by_key)
    drift = load_drift(ratios) if len(figures) > 1 else {}
    idle = figures[0]
    reference_figures = facts["apply_model"]
    seconds = facts["excerpt_seconds"]
    print()
    print(
        f"apply_model alone in this process, {seconds:.1f} s excerpt (shifts 0, overlap 0.25): "
        f"fp32 {reference_figures['fp32']:.2f} s, bf16 autocast {reference_figures['bf16']:.2f} s"
    )
    over_reference = ", ".join(
        f"{key} {idle[key].median / reference_figures['fp32']:.2f}" for key in idle
    )
    print(f"  median idle process / apply_model fp32: {over_reference}")
    print()
    print(f"excerpt: {facts['excerpt']}")
    print(f"model: {facts['model']}, {facts['parameters'] / 1e6:.2f} M parameters")
    load_before, load_after = facts["load_average"]
    print(
        f"machine: {facts['cores']} cores; 1-minute load average {load_before:.2f} before "
        f"the runs, {load_after:.2f} after"
    )
    if load_before > 0.5 * facts["cores"]:
        print(
            "  WARNING: other work was running before the runs: it takes turns on the cores "
            "and the wall times (and ratios) can be off by 2x or more; compare the CPU times"
        )
    print(
        f"torch threads seen by a child: {facts['child_torch_threads']}; "
        f"OMP_NUM_THREADS={facts['omp_num_threads']}; "
        f"peak RSS of a bare `python -c pass` child: {facts['bare_child_rss_mib']:.0f} MiB"
    )
    print(f"Demucs CLI, effective options: {format_options(facts['demucs_options'])}")
    print(f"karaoke-bot (c), effective options: {format_options(facts['karaoke_options'])}")
    print(f"  difference: {facts['shifts_note']}")
    print("  cache: every karaoke-bot run had a new data folder, and its cache was filled by it")
    if json_path is not None:
        payload = {
            **facts,
            "runs": {
                str(load): {
                    entrant.key: {
                        "label": entrant.label,
                        "seconds": by_key[entrant.key].times,
                        "min": by_key[entrant.key].best,
                        "median": by_key[entrant.key].median,
                        "peak_rss_mib": by_key[entrant.key].peak_rss_mib,
                        "cpu_seconds": [run.cpu_seconds for run in by_key[entrant.key].runs],
                    }
                    for entrant in entrants
                }
                for load, by_key in figures.items()
            },
            "ratios": {str(load): by_key for load, by_key in ratios.items()},
            "load_drift": drift,
        }
        json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {json_path}")


def format_options(options: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in options.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=SHARED_DATA / "lets-go-fishin.ogg")
    parser.add_argument("--start", type=float, default=30.0, help="seconds into --input")
    parser.add_argument("--seconds", type=float, help="excerpt length (default 60, --quick 10)")
    parser.add_argument("--format", choices=["mp3", "wav"], default="mp3", help="of the excerpt")
    parser.add_argument("--runs", type=int, help="runs of each (default 3, --quick 1)")
    parser.add_argument("--device", default="cpu", help="given to both tools")
    parser.add_argument("--quick", action="store_true", help="tiny model, 10 s, 1 run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--background-load", type=int, default=0, metavar="N",
        help="also race beside N busy-loop processes, interleaved with the idle runs",
    )  # fmt: skip
    parser.add_argument("--make-model", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.make_model:
        make_model(args.make_model, args.quick)
        return
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    runs = args.runs or (1 if args.quick else 3)
    if not args.input.is_file():
        raise SystemExit(f"no input {args.input} (see --input)")

    ffmpeg = find_ffmpeg()
    env = child_environment()
    with tempfile.TemporaryDirectory(prefix="versus-demucs-") as folder:
        scratch = Path(folder)
        repo = scratch / "models"
        excerpt = scratch / f"excerpt.{args.format}"
        cut_excerpt(ffmpeg, args.input, args.start, seconds, excerpt)
        # The model is built in a child: torch in this process would raise every later
        # child's peak RSS to ours (see the module docstring).
        make = [sys.executable, __file__, "--make-model", str(repo)]
        parameters = int(
            subprocess.run(
                make + (["--quick"] if args.quick else []),
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout.split()[-1]
        )
        threads = child_output("import torch; print(torch.get_num_threads())", env)
        bare_rss = bare_child_rss_mib(env, scratch)
        entrants = contenders(excerpt, repo, args.device)
        print(
            f"{runs} run(s) each of a {seconds:.0f} s excerpt, interleaved "
            f"({'tiny' if args.quick else 'htdemucs'} architecture, random weights):"
        )
        load_before = os.getloadavg()[0]
        loads = sorted({0, args.background_load})
        figures = race(entrants, runs, scratch, repo, args.device, loads)
        load_after = os.getloadavg()[0]

        # From here on this process may grow: no more timed children.
        sample = scratch / "options"
        sample.mkdir()
        write_config(sample, repo, args.device)
        apply = reference(repo, excerpt, scratch, ffmpeg)
        samples, segment = int(apply["samples"]), apply["model_segment_seconds"]
        demucs = demucs_options(entrants[0].command(sample)[3:], segment)
        ours = karaoke_options(entrants[2].command(sample)[3:])
        plain = segment_count(samples, segment, demucs["overlap"])
        shifted = segment_count(samples, segment, demucs["overlap"], pad=44100 // 2)
        segments = f"{plain}" if plain == shifted else f"{plain}-{shifted}"
        shifts_note = (
            f"Demucs CLI shifts {demucs['shifts']} (its default) vs karaoke-bot shifts "
            f"{ours['shifts']}: shifts=1 is one pass over the audio moved by a random 0-0.5 s "
            f"(padded), {segments} forward passes vs {plain} at shifts 0; "
            f"Demucs writes MP3 with lameenc (preset {demucs['mp3_preset']}), karaoke-bot "
            f"with ffmpeg; Demucs decodes with sphn, karaoke-bot with ffmpeg"
        )
        facts: dict[str, Any] = {
            "excerpt": f"{seconds:.1f} s of {args.input.name} from {args.start:.0f} s, "
            f"{args.format} ({excerpt.stat().st_size / 1e6:.2f} MB)",
            "excerpt_seconds": samples / 44100,
            "model": f"random {'tiny htdemucs' if args.quick else 'htdemucs'} architecture",
            "parameters": parameters,
            "quick": args.quick,
            "child_torch_threads": int(threads),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "bare_child_rss_mib": bare_rss,
            "cores": os.cpu_count(),
            "load_average": [load_before, load_after],
            "background_load": args.background_load,
            "apply_model": {"fp32": apply["fp32"], "bf16": apply["bf16"]},
            "demucs_options": demucs,
            "karaoke_options": ours,
            "shifts_note": shifts_note,
            "commands": {
                entrant.key: " ".join(entrant.command(Path("RUN"))) for entrant in entrants
            },
        }
        report(entrants, figures, facts, args.json)


if __name__ == "__main__":
    main()
