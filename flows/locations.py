"""Where a flow run writes: one folder per run under a branch's output root, local or on object storage.

Layout (the branch is Metaflow's ``@project`` branch: ``user.alice``, ``test.nightly``, ``prod``)::

    <output root>/<branch>/graph.duckdb              that branch's graph store (local roots only)
    <output root>/<branch>/<FlowName>/<run id>/      one run folder: records, plan, shards, crosswalk, ...

A branch only ever writes under its own folder, so a ``--branch`` run or a
developer's personal branch cannot overwrite what production wrote; the one
file shared on purpose, the production graph, is guarded by
``check_graph_write``.

The output root is a local path or a URI (``s3://bucket/kg``, ``gs://...``,
``file:///...``). The library functions read and write local files, so a step
on another machine works in a local scratch folder: ``RunFolder.staged`` copies
what the step reads there from the run folder and copies what it wrote back
(pyarrow's filesystem layer: S3 and GCS built in). For a plain local path no
copy is made: the step works in the run folder itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from kg.errors import KGError

PRODUCTION_BRANCH = "prod"
"""The branch ``--production`` gives (without ``--branch``): the only one allowed to write the production graph."""

GRAPH_FILE = "graph.duckdb"
PRODUCTION_GRAPH_ENV = "KG_PRODUCTION_GRAPH"
"""Set it when the production graph lives outside ``<output root>/prod/``; the guard then protects that file too."""


def is_uri(location: str) -> bool:
    """True for ``scheme://...`` (object storage, or ``file://`` to force the staged code path); False for paths."""
    return "://" in location


def _join(location: str, *parts: str) -> str:
    if is_uri(location):
        return "/".join([location.rstrip("/"), *parts])
    return str(Path(location).resolve().joinpath(*parts))


def branch_root(output_root: str, branch: str) -> str:
    """The folder a branch writes under: ``<output root>/<branch>``."""
    if not branch or "/" in branch or branch in (".", ".."):
        raise KGError(f"{branch!r} is not a branch name (Metaflow @project gives e.g. 'user.alice' or 'prod')")
    return _join(output_root, branch)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder: a resolved local path or a URI. Steps name files relative to it."""

    location: str

    @classmethod
    def for_run(cls, output_root: str, branch: str, flow: str, run_id: str) -> RunFolder:
        return cls(_join(branch_root(output_root, branch), flow, str(run_id)))

    @property
    def is_local(self) -> bool:
        return not is_uri(self.location)

    def uri(self, name: str = "") -> str:
        return _join(self.location, name) if name else self.location

    @contextmanager
    def staged(self, pull: Sequence[str] = (), push: Sequence[str] = ()) -> Iterator[Path]:
        """A local folder laid out like the run folder: ``pull`` copied in, ``push`` copied back on success.

        Entries are relative names of files or folders. Nothing is pushed when
        the block raises, so a failed task leaves the run folder as it was
        (the library writes each output atomically, under a temporary name).
        """
        if self.is_local:
            folder = Path(self.location)
            folder.mkdir(parents=True, exist_ok=True)
            yield folder
            return
        fs, base = pafs.FileSystem.from_uri(self.location)
        local = pafs.LocalFileSystem()
        scratch = Path(tempfile.mkdtemp(prefix="kg-stage-"))
        try:
            for name in pull:
                _copy(fs, f"{base}/{name}", local, str(scratch / name))
            yield scratch
            for name in push:
                if (scratch / name).exists():
                    _copy(local, str(scratch / name), fs, f"{base}/{name}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _copy(src_fs: pafs.FileSystem, src: str, dst_fs: pafs.FileSystem, dst: str) -> None:
    info = src_fs.get_file_info(src)
    if info.type == pafs.FileType.NotFound:
        raise KGError(f"{src}: not found in the run folder (did the step that writes it finish?)")
    if info.type == pafs.FileType.File:
        dst_fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
    else:
        dst_fs.create_dir(dst, recursive=True)
    pafs.copy_files(src, dst, source_filesystem=src_fs, destination_filesystem=dst_fs)


def default_graph(output_root: str, branch: str) -> Path:
    """The branch's own graph store, ``<output root>/<branch>/graph.duckdb``; needs a local output root."""
    if is_uri(output_root):
        raise KGError(
            f"output root {output_root} is object storage, and a graph store is a local DuckDB file: "
            "give --graph PATH on the machine (or shared volume) that runs the merge step"
        )
    return Path(branch_root(output_root, branch), GRAPH_FILE)


def production_graphs(output_root: str) -> list[Path]:
    """Every path that names the production graph: under the output root, and ``$KG_PRODUCTION_GRAPH``."""
    paths = [] if is_uri(output_root) else [Path(branch_root(output_root, PRODUCTION_BRANCH), GRAPH_FILE)]
    if os.environ.get(PRODUCTION_GRAPH_ENV):
        paths.append(Path(os.environ[PRODUCTION_GRAPH_ENV]))
    return [p.resolve() for p in paths]


def check_graph_write(graph: Path, output_root: str, branch: str) -> None:
    """Refuse to write the production graph from any branch but production (``--production``, no ``--branch``)."""
    if branch != PRODUCTION_BRANCH and graph.resolve() in production_graphs(output_root):
        raise KGError(
            f"refusing to merge into the production graph {graph} from branch {branch!r}: only the "
            f"{PRODUCTION_BRANCH!r} branch (run with --production) writes it; leave --graph out to use "
            "this branch's own graph"
        )
