"""A run directory: one simulation run on disk, written so that no interruption loses or mixes work.

Layout (``DIR`` = ``--out``)::

    manifest.json   written first: the run (scenario and plan as validated and as written, their hashes, seed,
                    trials per design point, precision rule, package versions), every session (command, start,
                    backend, workers) and the status: running, interrupted or complete
    parts/          one Parquet file per finished chunk, p<design point>-<effect mode>-<first>-<end>.parquet
    trials.parquet  every trial in row order, assembled from the parts in row groups of BLOCK_TRIALS rows
    summary.json    written last
    idata/          InferenceData of the first trials (--keep-idata), one folder per design point and effect mode

Every file is written under a temporary name, synced and renamed (atomic on POSIX), so a file is either whole or
absent. The parts are the run's record: an interrupted run resumes from them; a finished run grows by adding
parts; trials.parquet and summary.json are computed from them in one streaming pass.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trialsim.chunk import Chunk
from trialsim.exceptions import Problem, ScenarioError, SimulationError
from trialsim.performance import BLOCK_TRIALS, summarise_blocks

FORMAT = "trialsim-run"
FORMAT_VERSION = 1
MANIFEST, SUMMARY, TRIALS, PARTS, IDATA, LOCK = (
    "manifest.json", "summary.json", "trials.parquet", "parts", "idata", ".lock"
)
#: Per-chunk execution facts kept out of the rows (which process fitted them varies with the pool).
EXECUTION_COLUMNS = ("worker_pid", "compiles_in_worker")
_PART = re.compile(r"p(\d+)-(point|assurance)-(\d+)-(\d+)\.parquet")
_METADATA_KEY = b"trialsim"
MODES = {False: "point", True: "assurance"}


def json_safe(value: Any) -> Any:
    """Standard JSON: NaN and infinities become null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary file to fill; on success it is synced and renamed to ``path`` (whole or not at all)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` whole or not at all: ``write`` fills a temporary file, which is synced and renamed."""
    with atomic(path) as temporary:
        write(temporary)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Strict JSON (no NaN), indented, written atomically."""
    text = json.dumps(json_safe(data), indent=2) + "\n"
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


@dataclass(frozen=True, order=True)
class Part:
    """A finished chunk on disk: trials ``start`` … ``stop`` − 1 of one design point and effect mode."""

    design_point: int
    mode: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"p{self.design_point:03d}-{self.mode}-{self.start:010d}-{self.stop:010d}.parquet"

    @classmethod
    def of(cls, chunk: Chunk) -> Part:
        return cls(chunk.design_point, MODES[chunk.assurance], chunk.start, chunk.stop)

    @classmethod
    def parse(cls, name: str) -> Part | None:
        match = _PART.fullmatch(name)
        if match is None:
            return None
        point, mode, start, stop = match.groups()
        return cls(int(point), mode, int(start), int(stop))


def segments(sample_sizes: list[int], assurance: bool) -> list[tuple[int, str]]:
    """(design point, effect mode) of a run in row order ("assurance" sorts before "point")."""
    modes = ["assurance", "point"] if assurance else ["point"]
    return [(point, mode) for point in range(len(sample_sizes)) for mode in modes]


class RunDirectory:
    """The files of one run directory (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest_path = self.path / MANIFEST
        self.summary_path = self.path / SUMMARY
        self.trials_path = self.path / TRIALS
        self.parts_dir = self.path / PARTS
        self.idata_dir = self.path / IDATA

    # -- the manifest -------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when there is none; an unreadable one is a user error naming the file."""
        if not self.manifest_path.exists():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ScenarioError(Problem(str(self.manifest_path), "", f"cannot be read ({error})")) from None
        if not isinstance(manifest, dict):
            raise ScenarioError(Problem(str(self.manifest_path), "", "is not a JSON object"))
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json(self.manifest_path, manifest)

    # -- checks before simulating -------------------------------------------------------------------------------
    def check_writable(self, option: str = "--out") -> None:
        """Create the directory if needed and prove it writable, before anything is simulated."""
        if self.path.exists() and not self.path.is_dir():
            raise ScenarioError(f"{option} {self.path}: exists and is not a directory")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise ScenarioError(f"{option} {self.path}: cannot write here ({error.strerror or error})") from None

    def is_empty(self) -> bool:
        """Nothing but a lock left by a session that ended before writing its manifest."""
        return not self.path.exists() or all(entry.name == LOCK for entry in self.path.iterdir())

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for one process at a time (released by the kernel even after kill -9)."""
        handle = open(self.path / LOCK, "w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ScenarioError(f"{self.path}: another trialsim process is writing this run") from None
            yield
        finally:
            handle.close()

    # -- parts --------------------------------------------------------------------------------------------------
    def parts(self) -> list[Part]:
        """The finished chunks, in row order."""
        if not self.parts_dir.is_dir():
            return []
        return sorted(part for entry in os.scandir(self.parts_dir) if (part := Part.parse(entry.name)) is not None)

    def remove_temporary(self) -> None:
        """Temporary files left by an interrupted write (never a finished part or file)."""
        for folder in (self.path, self.parts_dir):
            if folder.is_dir():
                for entry in folder.glob(".*.tmp-*"):
                    entry.unlink(missing_ok=True)

    def write_part(self, chunk: Chunk, rows: pd.DataFrame) -> None:
        """Save a finished chunk atomically; its execution facts (worker process, compilations) go to the file's
        metadata, not its rows."""
        execution = {
            column: int(rows[column].iloc[0]) for column in EXECUTION_COLUMNS if column in rows and len(rows)
        }
        table = pa.Table.from_pandas(rows.drop(columns=list(execution)), preserve_index=False)
        table = table.replace_schema_metadata({_METADATA_KEY: json.dumps({"execution": execution}).encode()})
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.parts_dir / Part.of(chunk).name, lambda temporary: pq.write_table(table, temporary))

    def covered(self) -> dict[tuple[int, str], list[tuple[int, int]]]:
        """Trial ranges done per (design point, effect mode), merged; overlapping parts are an error."""
        ranges: dict[tuple[int, str], list[tuple[int, int]]] = {}
        for part in self.parts():
            spans = ranges.setdefault((part.design_point, part.mode), [])
            if spans and part.start < spans[-1][1]:
                raise SimulationError(f"{self.parts_dir}: parts overlap at {part.name}; the run is damaged")
            if spans and part.start == spans[-1][1]:
                spans[-1] = (spans[-1][0], part.stop)
            else:
                spans.append((part.start, part.stop))
        return ranges

    def missing_chunks(
        self, sample_sizes: list[int], assurance: bool, trials: int, chunk_sizes: list[int]
    ) -> list[Chunk]:
        """Chunks still to simulate for ``trials`` trials per design point, in row order."""
        covered = self.covered()
        chunks = []
        for point, mode in segments(sample_sizes, assurance):
            cursor = 0
            gaps = []
            for start, stop in covered.get((point, mode), []) + [(trials, trials)]:
                if start > cursor:
                    gaps.append((cursor, min(start, trials)))
                cursor = max(cursor, stop)
                if cursor >= trials:
                    break
            for first, end in gaps:
                for start in range(first, end, chunk_sizes[point]):
                    stop = min(start + chunk_sizes[point], end)
                    chunks.append(Chunk(point, sample_sizes[point], start, stop, mode == "assurance"))
        return chunks

    def trials_done(self, sample_sizes: list[int], assurance: bool) -> int:
        """Trials per design point done in every (design point, effect mode) from trial 0 on."""
        covered = self.covered()
        done = [
            spans[0][1] if (spans := covered.get(segment)) and spans[0][0] == 0 else 0
            for segment in segments(sample_sizes, assurance)
        ]
        return min(done)

    def highest_trial(self) -> int:
        """One past the highest trial index in any part (0 without parts)."""
        return max((part.stop for part in self.parts()), default=0)

    def check_complete(self, sample_sizes: list[int], assurance: bool, trials: int) -> None:
        """Every (design point, effect mode) covered exactly by trials 0 … ``trials`` − 1, nothing more."""
        covered = self.covered()
        expected = segments(sample_sizes, assurance)
        wrong = [segment for segment in expected if covered.get(segment) != [(0, trials)]]
        extra = set(covered) - set(expected)
        if wrong or extra:
            raise ScenarioError(
                f"{self.parts_dir}: the parts do not hold exactly trials 0-{trials - 1} of every design point "
                f"(missing or extra: {sorted(set(wrong) | extra)})"
            )

    # -- one pass over the parts: the summary, and trials.parquet -----------------------------------------------
    def blocks(self, sample_sizes: list[int], assurance: bool) -> Iterator[tuple[pa.Table, dict]]:
        """The rows of every part in row order, re-cut into blocks of at most BLOCK_TRIALS rows of one design
        point and effect mode (the same blocks however the trials were chunked), with the execution facts of the
        parts each block came from."""
        by_segment: dict[tuple[int, str], list[Part]] = {}
        for part in self.parts():
            by_segment.setdefault((part.design_point, part.mode), []).append(part)
        schema = None
        for segment in segments(sample_sizes, assurance):
            buffered: list[pa.Table] = []
            rows = 0
            execution: dict[int, int] = {}
            for part in by_segment.get(segment, []):
                table = pq.read_table(self.parts_dir / part.name)
                facts = json.loads((table.schema.metadata or {}).get(_METADATA_KEY, b"{}")).get("execution", {})
                if "worker_pid" in facts:
                    pid = facts["worker_pid"]
                    execution[pid] = max(execution.get(pid, 0), facts.get("compiles_in_worker", 0))
                table = table.replace_schema_metadata(None)
                if schema is None:
                    schema = table.schema
                elif not table.schema.equals(schema):
                    raise SimulationError(f"{part.name}: columns differ from the run's other parts")
                buffered.append(table)
                rows += table.num_rows
                while rows >= BLOCK_TRIALS:
                    joined = pa.concat_tables(buffered)
                    yield joined.slice(0, BLOCK_TRIALS), execution
                    execution = {}
                    buffered, rows = [joined.slice(BLOCK_TRIALS)], joined.num_rows - BLOCK_TRIALS
            if rows:
                yield pa.concat_tables(buffered), execution

    def summarise(
        self, sample_sizes: list[int], assurance: bool, control: str, arms: list[str],
        metadata: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
        """Operating characteristics of every design point from the parts, one design point in memory at a time;
        with ``metadata``, also write trials.parquet (atomically, ``metadata`` in its schema). Returns the design
        points and the NUTS execution facts ({worker_processes, compilations}, None for other engines)."""
        compilations: dict[int, int] = {}
        with atomic(self.trials_path) if metadata is not None else nullcontext() as temporary:
            writer: pq.ParquetWriter | None = None

            def frames() -> Iterator[pd.DataFrame]:
                """The blocks as frames, recording NUTS execution facts and writing trials.parquet on the way."""
                nonlocal writer
                for table, execution in self.blocks(sample_sizes, assurance):
                    for pid, count in execution.items():
                        compilations[pid] = max(compilations.get(pid, 0), count)
                    if temporary is not None:
                        if writer is None:
                            schema = table.schema.with_metadata({_METADATA_KEY: json.dumps(metadata).encode()})
                            writer = pq.ParquetWriter(temporary, schema)
                        writer.write_table(table, row_group_size=BLOCK_TRIALS)
                    yield table.to_pandas()

            try:
                points = summarise_blocks(frames(), control, arms)
            finally:
                if writer is not None:
                    writer.close()
        nuts = None
        if compilations:
            nuts = {"worker_processes": len(compilations), "compilations": int(sum(compilations.values()))}
        return points, nuts


def write_trials(path: Path, table: pd.DataFrame, metadata: dict[str, Any]) -> None:
    """Write an in-memory trials table as trials.parquet: the same row groups and metadata as a run directory's."""
    from trialsim.performance import table_blocks

    def write(temporary: Path) -> None:
        writer = None
        for block in table_blocks(table):
            arrow = pa.Table.from_pandas(block, preserve_index=False).replace_schema_metadata(None)
            if writer is None:
                writer = pq.ParquetWriter(
                    temporary, arrow.schema.with_metadata({_METADATA_KEY: json.dumps(metadata).encode()})
                )
            writer.write_table(arrow, row_group_size=BLOCK_TRIALS)
        if writer is not None:
            writer.close()

    write_atomic(path, write)


def trials_metadata(path: Path) -> dict[str, Any] | None:
    """The run record in trials.parquet's schema (None for files written before it existed)."""
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[_METADATA_KEY]) if _METADATA_KEY in metadata else None


def trials_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def expected_rows(sample_sizes: list[int], assurance: bool, trials: int) -> int:
    return len(segments(sample_sizes, assurance)) * trials


