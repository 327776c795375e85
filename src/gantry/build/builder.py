"""The solver: a planned Dockerfile -> steps -> cached or executed -> an image in the store.

State of a stage while it is built: the image config being assembled, the layers
so far and ``fs_key``, the content address of the filesystem (the top chain ID,
or ``scratch``). A filesystem step's cache key hashes ``fs_key`` with what the
step does and sees (for RUN: argv, env -- which carries the declared build args
--, user, working dir, network; for COPY/ADD: destination, flags, and the
selected sources' content); metadata steps only change the config. So a LABEL
edit never re-runs a RUN below it, a build arg misses only from its first use,
and identical steps hit across Dockerfiles and after ``rmi``.

A miss mounts an overlay of the parent snapshots with a fresh upperdir, runs the
step there, and the upperdir becomes the layer (tar from it; then it is moved in
as the new snapshot). A step that changes nothing adds no layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gantry.build import history as hist
from gantry.build import memo
from gantry.build.options import BuildOptions as BuildOptions
from gantry.build.options import BuildResult as BuildResult
from gantry.build.plan import Plan, Stage, host_arch, plan
from gantry.build.progress import Progress, QuietProgress
from gantry.build.sources import (
    ContextIndex,
    CopyOptions,
    HashCache,
    Selected,
    copy_dir_finish,
    copy_file,
    entry_record,
    hash_cache_path,
    is_archive,
    parse_chmod,
    tree_digest,
)
from gantry.build.sources import clean as clean_source
from gantry.digest import Digest
from gantry.dockerfile.args import PROXY_ARGS, Step, run_history
from gantry.dockerfile.heredoc import parse_heredoc
from gantry.dockerfile.instructions import (
    AddInstr,
    ArgInstr,
    CmdInstr,
    CopyInstr,
    Dockerfile,
    EntrypointInstr,
    EnvInstr,
    ExposeInstr,
    HealthcheckInstr,
    Instruction,
    LabelInstr,
    MaintainerInstr,
    OnbuildInstr,
    RunInstr,
    ShellInstr,
    StopsignalInstr,
    UserInstr,
    VolumeInstr,
    WorkdirInstr,
    parse_dockerfile,
    parse_instruction,
)
from gantry.dockerfile.mounts import Mount
from gantry.dockerfile.parser import parse as parse_raw
from gantry.errors import BuildError, DockerfileError, GantryError, ImageNotFound
from gantry.oci import (
    ContainerConfig,
    Descriptor,
    Healthcheck,
    History,
    ImageConfig,
    Manifest,
    RootFS,
    chain_ids,
    mediatypes,
    rfc3339,
)
from gantry.store import CacheRecord, Image, Store

if TYPE_CHECKING:
    from gantry.build.urls import Fetched
    from gantry.dockerfile.checks import CheckReport
    from gantry.runtime.spec import Mount as RuntimeMount

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class _Layer:
    descriptor: Descriptor
    diff_id: Digest
    size: int


@dataclass
class _State:
    stage: Stage
    os: str = "linux"
    architecture: str = ""
    variant: str | None = None
    cc: dict[str, object] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    onbuild: list[str] = field(default_factory=list)
    author: str | None = None
    layers: list[_Layer] = field(default_factory=list)
    history: list[History] = field(default_factory=list)
    #: times (epoch seconds) for new history entries; None for metadata ones
    new_times: list[float | None] = field(default_factory=list)
    base_history: int = 0
    #: layers of the base image (what ``--squash`` keeps)
    base_layers: int = 0
    base_created: str | None = None
    chain: Digest | None = None
    step: int = 0
    total: int = 0

    @property
    def fs_key(self) -> str:
        return str(self.chain) if self.chain else "scratch"

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in self.env:
            k, _, v = e.partition("=")
            out[k] = v
        return out

    def set_env(self, key: str, value: str) -> None:
        for i, e in enumerate(self.env):
            if e.partition("=")[0] == key:
                self.env[i] = f"{key}={value}"
                return
        self.env.append(f"{key}={value}")

    @property
    def workdir(self) -> str:
        return str(self.cc.get("working_dir") or "/")

    @property
    def user(self) -> str:
        return str(self.cc.get("user") or "")

    @property
    def shell(self) -> tuple[str, ...]:
        sh = self.cc.get("shell")
        return tuple(sh) if isinstance(sh, tuple) and sh else DEFAULT_SHELL


def _key(*parts: object) -> str:
    data = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def _is_filesystem_step(instr: Instruction) -> bool:
    return isinstance(instr, RunInstr | CopyInstr | AddInstr | WorkdirInstr)


class Builder:
    def __init__(self, store: Store, opts: BuildOptions, progress: Progress | None = None):
        self._main_store = store
        self._local = threading.local()
        self._extra_stores: list[Store] = []
        self._count_lock = threading.Lock()
        self.opts = opts
        self.progress = progress or QuietProgress()
        self.df: Dockerfile | None = None
        self.dockerfile_name = "Dockerfile"
        self.states: dict[int, _State] = {}
        self._index: ContextIndex | None = None
        self._hashes = HashCache(hash_cache_path(store.root, opts.context))
        self.steps = 0
        self.cached = 0
        self._hits: list[str] = []
        self.epoch = opts.source_date_epoch
        self.lint: CheckReport | None = None
        self._base_envs: dict[int, dict[str, str]] = {}
        self._named_indexes: dict[Path, ContextIndex] = {}
        self._pull_locks: dict[str, threading.Lock] = {}
        self._pulled: set[str] = set()
        #: what this build relies on, for the build memo
        self.memo = memo.Recorder()
        #: what the memo already knew about these inputs (set by :func:`build`)
        self.known: memo.Lookup | None = None

    @property
    def store(self) -> Store:
        """The store for this thread (``Store`` objects are one per thread)."""
        if threading.current_thread() is threading.main_thread():
            return self._main_store
        s: Store | None = getattr(self._local, "store", None)
        if s is None:
            s = Store(self._main_store.root)
            self._local.store = s
            with self._count_lock:
                self._extra_stores.append(s)
        return s

    # ------------------------------------------------------------------ entry

    def build(self) -> BuildResult:
        opts = self.opts
        path: Path | None = None
        if opts.dockerfile_text is not None:
            text = opts.dockerfile_text
        else:
            path = opts.dockerfile or (opts.context / "Dockerfile")
            self.dockerfile_name = path.name
            try:
                text = path.read_bytes()
            except FileNotFoundError:
                raise BuildError(
                    f"failed to read dockerfile: open {path.name}: no such file or directory"
                ) from None
        self.df = parse_dockerfile(text, file=self.dockerfile_name)
        self.source_lines = text.decode("utf-8", "replace").splitlines()
        args = dict(opts.build_args)
        if self.epoch is None:
            self.epoch = parse_source_date_epoch(args.get("SOURCE_DATE_EPOCH", ""))
        if opts.lint and not (self.known is not None and self.known.lint_clean):
            self.lint = self._lint(text, path)
        self.plan: Plan = plan(self.df, args, opts.target, base_env=self._base_env)
        try:
            self._build_stages()
            image = self._commit(self.states[self.plan.target.index])
        finally:
            self._hashes.save()
            with contextlib.suppress(OSError):  # the one stat cache for all contexts, before
                (self.store.root / "build" / "context-hashes.json").unlink(missing_ok=True)
            self.store.mark_cache_used(self._hits)
            for extra in self._extra_stores:
                extra.close()
        result = BuildResult(
            image,
            self.steps,
            self.cached,
            warnings=list(self.lint.findings) if self.lint is not None else [],
            # SOURCE_DATE_EPOCH is the frontend's own (buildx also sends it from the env)
            unconsumed_args=[
                a for a in self.plan.resolver.unconsumed() if a != "SOURCE_DATE_EPOCH"
            ],
        )
        if self.known is not None and self.known.lint_clean:
            # the checks were skipped: what they looked up is what the note verified
            for name, image_id in self.known.images.items():
                self.memo.images.setdefault(name, image_id)
        with contextlib.suppress(OSError, GantryError):
            memo.save(self.store, opts, text, self.memo, result)
        return result

    def _lint(self, text: bytes, path: Path | None) -> CheckReport:
        """BuildKit's build checks; ``# check=error=true`` makes a finding fail the build."""
        from gantry.dockerfile.checks import run_checks

        def image_env(name: str) -> dict[str, str] | None:
            try:
                img = self.store.resolve(name)
                cfg = self.store.config(img)
            except GantryError:
                self.memo.images.setdefault(name, "")
                return None
            self.memo.images.setdefault(name, str(img.id))
            return dict(e.partition("=")[::2] for e in cfg.container_config.env)

        report = run_checks(
            text,
            file=self.dockerfile_name,
            build_args=self.opts.build_args,
            target=self.opts.target,
            context_dir=self.opts.context,
            dockerfile_path=path,
            base_env=image_env,
            best_practices=False,
        )
        report.raise_for_violations()
        return report

    def _base_env(self, stage: Stage) -> dict[str, str] | None:
        return self._base_envs.get(stage.index)

    def _build_stages(self) -> None:
        """Every needed stage, each as soon as the stages it uses are built; independent
        stages in parallel (two at a time: RUN steps are usually CPU-bound)."""
        order = self.plan.order
        if len(order) == 1:
            self._build_stage(order[0])
            return
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        pending = list(order)
        running: dict[Future[None], int] = {}
        done: set[int] = set()
        error: BaseException | None = None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as pool:
            while pending or running:
                if error is None:
                    for stage in list(pending):
                        if self.plan.needs[stage.index] <= done and len(running) < 2:
                            pending.remove(stage)
                            running[pool.submit(self._build_stage, stage)] = stage.index
                if not running:
                    if pending:
                        error = BuildError(
                            "circular dependency detected on stage: " + pending[0].display_name
                        )
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    i = running.pop(f)
                    exc = f.exception()
                    if exc is not None:
                        error = error or exc
                    else:
                        done.add(i)
                if error is not None:
                    pending.clear()
        if error is not None:
            raise error

    # ------------------------------------------------------------------ stages

    def _build_stage(self, stage: Stage) -> None:
        st = _State(stage)
        triggers: list[Instruction] = []
        name = f"FROM {self._from_display(stage)}"
        if stage.base is not None:
            parent = self.states[stage.base.index]
            self._inherit(st, parent)
        elif stage.image.lower() == "scratch":
            arch, variant = host_arch()
            st.architecture, st.variant = arch, variant or None
            st.env = [f"PATH={DEFAULT_PATH}"]
        else:
            img, config = self._base_image(stage)
            self._from_image(st, img, config)
            self._base_envs[stage.index] = st.env_map()
            triggers = self._triggers(config.container_config.on_build, stage)
        run_stage = stage
        if triggers:
            run_stage = dataclasses.replace(stage, instructions=[*triggers, *stage.instructions])
        st.total = 1 + sum(1 for i in run_stage.instructions if _is_filesystem_step(i))
        if stage.base is None and stage.image.lower() != "scratch":
            name = self._prefix(st) + name
            self.memo.vertices.append(("from", name))
            n = self.progress.vertex(name)
            self.progress.done(n)
        else:
            st.step += 1
        self.states[stage.index] = st
        for step in self.plan.resolver.resolve(run_stage):
            self._step(st, step)

    def _base_image(self, stage: Stage) -> tuple[Image, ImageConfig]:
        img = self._image(stage.image)
        return img, self.store.config(img)

    def _image(self, ref: str) -> Image:
        """The image ``ref`` names (``--build-context`` applied), pulled when it is not
        in the store or when ``--pull`` asks for the registry's current one."""
        name = self._image_ref(ref)
        with self._count_lock:
            lock = self._pull_locks.setdefault(name, threading.Lock())
        with lock:  # one pull per name, however many stages want it
            if name not in self._pulled and not self.opts.pull:
                try:
                    return self._resolved(name)
                except ImageNotFound:
                    pass
            if name in self._pulled:
                return self._resolved(name)
            n = self.progress.vertex(f"[internal] load metadata for {_full_name(name)}")
            try:
                from gantry.distribution import pull

                pull(self.store, name)
            except GantryError as err:
                msg = f"{ref}: failed to resolve source metadata for {_full_name(name)}: {err}"
                self.progress.error(n, msg)
                raise BuildError(
                    msg, hint="pull or import it first (gantry pull / gantry import)"
                ) from None
            self.progress.done(n)
            self._pulled.add(name)
            return self._resolved(name)

    def _resolved(self, name: str) -> Image:
        img = self.store.resolve(name)
        if self.memo.images.get(name) == "":
            # the checks ran without this image (it was pulled since): their findings
            # are not the ones a build with it in the store would get
            self.memo.refuse()
        self.memo.images[name] = str(img.id)
        return img

    def _from_display(self, stage: Stage) -> str:
        if stage.base is not None:
            return stage.base.display_name
        if stage.image.lower() == "scratch":
            return "scratch"
        return _full_name(stage.image)

    def _inherit(self, st: _State, parent: _State) -> None:
        st.os, st.architecture, st.variant = parent.os, parent.architecture, parent.variant
        st.cc = dict(parent.cc)
        st.env = list(parent.env)
        st.labels = dict(parent.labels)
        st.exposed = list(parent.exposed)
        st.volumes = list(parent.volumes)
        st.author = parent.author
        st.layers = list(parent.layers)
        st.history = list(parent.history)
        st.new_times = list(parent.new_times)
        st.base_history = parent.base_history
        st.base_layers = parent.base_layers
        st.base_created = parent.base_created
        st.chain = parent.chain
        # ONBUILD triggers do not carry over from a base stage
        st.onbuild = []

    def _from_image(self, st: _State, img: Image, config: ImageConfig) -> None:
        st.os, st.architecture, st.variant = config.os, config.architecture, config.variant
        cc = config.container_config
        st.cc = {
            "user": cc.user,
            "working_dir": cc.working_dir,
            "entrypoint": cc.entrypoint,
            "cmd": cc.cmd,
            "stop_signal": cc.stop_signal,
            "args_escaped": cc.args_escaped,
            "healthcheck": cc.healthcheck,
            "shell": cc.shell,
        }
        st.env = list(cc.env)
        st.labels = dict(cc.labels)
        st.exposed = list(cc.exposed_ports)
        st.volumes = list(cc.volumes)
        st.author = config.author
        m = self.store.manifest(img)
        st.layers = [_Layer(d, diff, 0) for d, diff in zip(m.layers, config.diff_ids, strict=True)]
        st.history = list(config.history)
        st.new_times = [None] * len(st.history)
        st.base_history = len(st.history)
        st.base_layers = len(st.layers)
        st.base_created = config.created
        ids = chain_ids(config.diff_ids)
        st.chain = ids[-1] if ids else None

    def _triggers(self, on_build: Sequence[str], stage: Stage) -> list[Instruction]:
        out: list[Instruction] = []
        for expr in on_build:
            result = parse_raw(expr, file=self.dockerfile_name)
            if len(result.nodes) != 1:
                raise BuildError("onbuild trigger should be a single expression")
            node = result.nodes[0]
            node.start_line = stage.source.start_line
            node.end_line = stage.source.end_line
            out.append(parse_instruction(node, file=self.dockerfile_name))
        return out

    def _prefix(self, st: _State) -> str:
        st.step += 1
        width = len(str(st.total))
        name = f"{st.stage.name} " if st.stage.name else ""
        return f"[{name}{st.step:>{width}}/{st.total}] "

    # ------------------------------------------------------------------ steps

    def _step(self, st: _State, step: Step) -> None:
        instr = step.expanded
        if isinstance(instr, EnvInstr):
            for k, v in instr.pairs:
                st.set_env(k, v)
            self._meta(st, hist.key_values("ENV", instr.pairs))
        elif isinstance(instr, LabelInstr):
            st.labels.update(instr.pairs)
            self._meta(st, hist.key_values("LABEL", instr.pairs))
        elif isinstance(instr, ArgInstr):
            # the resolver put each ARG's value (None: unset) in ``default``
            self._meta(st, hist.arg([(a.name, a.default) for a in instr.args]))
        elif isinstance(instr, WorkdirInstr):
            self._workdir(st, instr.path)
        elif isinstance(instr, UserInstr):
            st.cc["user"] = instr.user
            self._meta(st, hist.simple("USER", instr.user))
        elif isinstance(instr, ExposeInstr):
            ports: list[str] = []
            for word in instr.ports:
                ports += _port_specs(word)
            for p in ports:
                if p not in st.exposed:
                    st.exposed.append(p)
            self._meta(st, hist.expose(ports))
        elif isinstance(instr, VolumeInstr):
            for v in instr.volumes:
                if v not in st.volumes:
                    st.volumes.append(v)
            self._meta(st, hist.simple("VOLUME", hist.go_list(instr.volumes)))
        elif isinstance(instr, StopsignalInstr):
            from gantry.build.signals import parse_signal

            parse_signal(instr.signal)  # BuildKit refuses what moby cannot send
            st.cc["stop_signal"] = instr.signal
            self._meta(st, hist.simple("STOPSIGNAL", instr.signal))
        elif isinstance(instr, ShellInstr):
            st.cc["shell"] = tuple(instr.shell)
            self._meta(st, hist.simple("SHELL", hist.go_list(instr.shell)))
        elif isinstance(instr, MaintainerInstr):
            st.author = instr.maintainer
            self._meta(st, hist.simple("MAINTAINER", instr.maintainer))
        elif isinstance(instr, CmdInstr):
            args = self._with_shell(st, instr.cmd, instr.shell_form)
            st.cc["cmd"] = args
            st.cc["args_escaped"] = True
            self._meta(st, hist.command("CMD", args))
        elif isinstance(instr, EntrypointInstr):
            args = self._with_shell(st, instr.cmd, instr.shell_form)
            st.cc["entrypoint"] = args
            if not any(isinstance(i, CmdInstr) for i in st.stage.instructions):
                st.cc["cmd"] = None
            self._meta(st, hist.command("ENTRYPOINT", args))
        elif isinstance(instr, HealthcheckInstr):
            hc = Healthcheck(
                test=instr.test,
                interval=instr.interval,
                timeout=instr.timeout,
                start_period=instr.start_period,
                start_interval=instr.start_interval,
                retries=instr.retries,
            )
            st.cc["healthcheck"] = hc
            self._meta(
                st,
                hist.healthcheck(
                    instr.test,
                    instr.interval,
                    instr.timeout,
                    instr.start_period,
                    instr.start_interval,
                    instr.retries,
                ),
            )
        elif isinstance(instr, OnbuildInstr):
            st.onbuild.append(instr.expression)
        elif isinstance(instr, RunInstr):
            self._run(st, instr, step)
        elif isinstance(instr, CopyInstr | AddInstr):
            self._copy(st, instr)
        else:  # pragma: no cover - every instruction type is handled above
            raise BuildError(f"unsupported instruction {instr.keyword}")

    @staticmethod
    def _with_shell(st: _State, cmd: Sequence[str], shell_form: bool) -> tuple[str, ...]:
        if shell_form:
            return (*st.shell, " ".join(cmd))
        return tuple(cmd)

    def _meta(self, st: _State, created_by: str) -> None:
        st.history.append(History(created_by=created_by, comment=hist.COMMENT, empty_layer=True))
        st.new_times.append(None)

    def _layer_history(self, st: _State, created_by: str, layer: _Layer | None, t: float) -> None:
        if layer is not None:
            st.layers.append(layer)
        st.history.append(
            History(created_by=created_by, comment=hist.COMMENT, empty_layer=layer is None)
        )
        st.new_times.append(t)

    # ------------------------------------------------------------ fs steps

    def _fs_step(
        self,
        st: _State,
        name: str,
        key: str,
        kind: str,
        action: object,
        *,
        link: bool = False,
    ) -> tuple[_Layer | None, float]:
        """Cached result of a filesystem step, or run ``action(merged_root)`` and record it.

        ``link`` (``COPY --link``): the step acts on an empty root, so its layer does not
        depend on the layers below; a cached one is reused on any parent (rebased).
        """
        with self._count_lock:
            self.steps += 1
        self.memo.keys.append(key)
        self.memo.vertices.append(("step", name))
        n = self.progress.vertex(name)
        if not self.opts.no_cache:
            rec = self.store.get_cache_record(key)
            if rec is not None and (rec.chain_id is None or self._chain_ok(rec.chain_id)):
                with self._count_lock:
                    self.cached += 1
                    self._hits.append(key)
                self.progress.cached(n)
                if rec.layer_digest is None or rec.diff_id is None or rec.chain_id is None:
                    return None, rec.created
                st.chain = self._rebase(st.chain, rec) if link else rec.chain_id
                desc = Descriptor(
                    media_type=rec.media_type or mediatypes.OCI_LAYER_GZIP,
                    digest=rec.layer_digest,
                    size=self.store.content.size(rec.layer_digest),
                )
                return _Layer(desc, rec.diff_id, rec.size), rec.created
        work = self.store.scratch_dir("step")
        try:
            layer = self._execute(st, n, work, action, link=link)
        except BaseException:
            _rmtree(work)
            raise
        created = time.time() if self.epoch is None else float(self.epoch)
        try:
            if layer is None:
                self.store.put_cache_record(
                    key,
                    kind=kind,
                    description=name,
                    layer_digest=None,
                    diff_id=None,
                    chain_id=None,
                    size=0,
                    created=created,
                )
                result: _Layer | None = None
            else:
                result = self._commit_layer(st, work, layer, key, kind, name, created)
        finally:
            _rmtree(work)
        self.progress.done(n)
        return result, created

    def _chain_ok(self, chain: Digest) -> bool:
        try:
            self.store.snapshot_info(chain)
        except GantryError:
            return False
        return True

    def _rebase(self, parent: Digest | None, rec: CacheRecord) -> Digest:
        """The chain of a cached ``--link`` layer on ``parent``; its snapshot made if needed.

        A snapshot holds only its own layer's files, so the one recorded for the layer on
        another parent serves as is: hard-linked into place for the new chain.
        """
        assert rec.diff_id is not None and rec.chain_id is not None
        assert rec.layer_digest is not None
        chain = _chain_of(parent, rec.diff_id)
        if chain == rec.chain_id or self._chain_ok(chain):
            return chain
        source = self.store.lowerdirs(rec.chain_id)[0]
        work = self.store.scratch_dir("rebase")
        try:
            import subprocess

            copy = work / "fs"
            subprocess.run(["cp", "-a", "-l", str(source), str(copy)], check=True)
            self.store.adopt_snapshot(
                chain,
                parent=parent,
                diff_id=rec.diff_id,
                layer_digest=rec.layer_digest,
                media_type=rec.media_type or mediatypes.OCI_LAYER_GZIP,
                size=rec.size,
                directory=copy,
            )
        finally:
            _rmtree(work)
        return chain

    def _execute(
        self, st: _State, n: int, work: Path, action: object, *, link: bool = False
    ) -> Path | None:
        """Mount, act, unmount; the upperdir if anything changed."""
        from gantry.runtime.overlay import overlay

        upper, wd, merged = work / "upper", work / "work", work / "merged"
        for d in (upper, wd, merged):
            d.mkdir()
        if st.chain is not None and not link:
            lowers = self.store.lowerdirs(st.chain)
        else:
            empty = work / "empty"
            empty.mkdir()
            lowers = [empty]
        with overlay(merged, lowers, upper, wd):
            action(merged, n, work)  # type: ignore[operator]
        if not any(upper.iterdir()):
            return None
        return upper

    def _commit_layer(
        self,
        st: _State,
        work: Path,
        upper: Path,
        key: str,
        kind: str,
        name: str,
        created: float,
    ) -> _Layer:
        layer, chain = self._layer_from(upper, st.chain, hold=f"cache:{key}")
        self.store.put_cache_record(
            key,
            kind=kind,
            description=name,
            layer_digest=layer.descriptor.digest,
            media_type=layer.descriptor.media_type,
            diff_id=layer.diff_id,
            chain_id=chain,
            size=layer.size,
            created=created,
        )
        st.chain = chain
        return layer

    def _layer_from(
        self, directory: Path, parent: Digest | None, *, hold: str | None = None
    ) -> tuple[_Layer, Digest]:
        """``directory`` (overlay upper dirs' files) as a layer blob in the content store,
        and moved in as the snapshot on ``parent``; the layer and its chain ID."""
        from gantry.layers.create import create

        with self.store.content.writer() as w:
            info = create(directory, w, overlay=True, source_date_epoch=self.epoch)
        chain = _chain_of(parent, info.diff_id)
        size = info.content_size  # Docker's measure: symlink targets, each inode once
        self.store.adopt_snapshot(
            chain,
            parent=parent,
            diff_id=info.diff_id,
            layer_digest=info.digest,
            media_type=info.media_type,
            size=size,
            directory=directory,
            hold=hold,
        )
        desc = Descriptor(media_type=info.media_type, digest=info.digest, size=info.size)
        return _Layer(desc, info.diff_id, size), chain

    # ------------------------------------------------------------------ RUN

    def _run(self, st: _State, instr: RunInstr, step: Step) -> None:
        args: list[str] = list(instr.cmd)
        if instr.heredocs and instr.shell_form:
            first = parse_heredoc(args[0]) if len(args) == 1 else None
            if first is not None and len(instr.heredocs) == 1:
                data = instr.heredocs[0].data()
                args = [data]
            else:
                text = args[0]
                for doc in instr.heredocs:
                    text += "\n" + doc.content + doc.name
                args = [text]
        if instr.shell_form:
            args = [*st.shell, " ".join(args)]
        mounts = self._expand_mounts(instr)
        mount_key = [self._mount_key(st, m) for m in mounts]
        network = instr.network if instr.network != "default" else self.opts.network
        run_env = self._run_env(st, step)
        created_by = run_history(args, step.args, step.env) + hist.SUFFIX
        key = _key(
            "run/1",
            st.fs_key,
            args,
            run_env,
            st.user,
            st.workdir,
            network,
            instr.security,
            mount_key,
            self.epoch,
        )
        display = instr.original.strip()
        if instr.heredocs:
            display = display.split("\n", 1)[0]
        name = self._prefix(st) + _uppercase(display)

        def action(root: Path, n: int, work: Path) -> None:
            from gantry.runtime import SpecOptions, resolve_user, run_container

            user = resolve_user(root, st.user)
            cwd = st.workdir
            _mkdir_in_root(root, cwd, None)
            with contextlib.ExitStack() as stack:
                env = list(run_env)
                runtime_mounts = []
                for i, m in enumerate(mounts):
                    if m.type in ("secret", "ssh"):
                        runtime_mounts += self._secret_mount(stack, st, m, i, env)
                    else:
                        runtime_mounts.append(self._prepare_mount(stack, st, m, work))
                spec = SpecOptions(
                    args=args,
                    env=env,
                    cwd=cwd,
                    user=user,
                    network="none" if network == "none" else "host",
                    mounts=runtime_mounts,
                )
                code = run_container(
                    root,
                    spec,
                    on_output=lambda _stream, b: self.progress.log(n, b),
                    root=self.store.root,
                    bundle_dir=work / "bundle",
                )
            if code != 0:
                shown = " ".join(args) if instr.shell_form else json.dumps(list(instr.cmd))
                msg = f'process "{shown}" did not complete successfully: exit code: {code}'
                self.progress.error(n, msg)
                raise StepFailed(
                    msg,
                    step=name,
                    file=self.dockerfile_name,
                    line=instr.start_line,
                    end_line=instr.end_line,
                    tail=self.progress.tail(n),
                    source=self.source_lines,
                    exit_code=code,
                )

        layer, t = self._fs_step(st, name, key, "regular", action)
        self._layer_history(st, created_by, layer, t)

    # ------------------------------------------------------------ RUN --mount

    def _expand_mounts(self, instr: RunInstr) -> list[Mount]:
        """The RUN's mounts (variables already expanded by the resolver), checked."""
        out: list[Mount] = []
        for m in instr.mounts:
            if m.type in ("secret", "ssh"):
                out.append(m)
                continue
            if not m.target:
                raise BuildError(f"mount {m.spec!r}: target is required")
            out.append(m)
        return out

    def _mount_key(self, st: _State, m: Mount) -> list[object]:
        """What of a mount enters the RUN's cache key: never a cache mount's contents."""
        base: list[object] = [m.type, m.target, m.readonly]
        if m.type in ("secret", "ssh"):
            # the shape of the mount, never the secret's value or the agent's socket
            return [*base, m.cache_id, m.source, m.env, m.required, m.mode, m.uid, m.gid]
        if m.type == "cache":
            key = [*base, m.cache_id, m.sharing, m.mode, m.uid, m.gid]
            if m.from_:  # what seeds a new cache: the source's identity, never its contents
                key += ["from", self._from_identity(m.from_), m.source]
            return key
        if m.type == "tmpfs":
            return [*base, m.size]
        local = None if not m.from_ or self._used_stage(m.from_) else self._local_context(m.from_)
        if m.from_ and local is None:
            used = self._used_stage(m.from_)
            ref = used.fs_key if used is not None else self._image_chain(m.from_)
            return [*base, "from", ref, m.source]
        index = self._context_index(local)
        rel = posixpath.normpath((m.source or "/").lstrip("/")) if m.source else ""
        rel = "" if rel == "." else rel
        sel = index.select(rel or ".")[0]
        lines = [
            entry_record(sel.path, "", os.stat(sel.path), self._hashes if not sel.is_dir else None)
        ]
        if sel.is_dir:
            for r in index.below(sel.rel):
                p = os.path.join(index.root, r)
                lines.append(entry_record(p, r, os.lstat(p), self._hashes))
        return [*base, "context", rel, lines] + ([str(local)] if local is not None else [])

    def _image_chain(self, ref: str) -> str:
        img = self._image(ref)
        ids = chain_ids(self.store.config(img).diff_ids)
        return str(ids[-1]) if ids else "scratch"

    def _secret_mount(
        self,
        stack: contextlib.ExitStack[bool | None],
        st: _State,
        m: Mount,
        index: int,
        env: list[str],
    ) -> list[RuntimeMount]:
        """A secret as a file in memory and/or a variable; an SSH agent socket."""
        from gantry.build import secrets
        from gantry.runtime.spec import Mount as RM

        def place(target: str) -> str:
            return target if target.startswith("/") else posixpath.join(st.workdir, target)

        if m.type == "ssh":
            sid = secrets.ssh_id(m)
            sock = self.opts.ssh.get(sid)
            if sock is None:
                if m.required:
                    raise secrets.missing_ssh(sid)
                return []
            target = place(m.target or secrets.SSH_TARGET.format(n=index))
            env.append(f"SSH_AUTH_SOCK={target}")
            return [RM(target, "bind", sock, ("rbind", "rprivate"))]
        sid = secrets.secret_id(m)
        value = self.opts.secrets.get(sid)
        if value is None:
            if m.required:
                raise secrets.missing_secret(sid)
            return []
        out: list[RuntimeMount] = []
        file_target = secrets.secret_target(m)
        if file_target is not None:
            directory = stack.enter_context(secrets.private_dir())
            path = secrets.write_secret(directory, f"s{index}", value, m)
            out.append(RM(place(file_target), "bind", str(path), ("rbind", "rprivate", "ro")))
        if m.env:
            env.append(f"{m.env}={value.decode('utf-8', 'surrogateescape')}")
        return out

    def _prepare_mount(
        self, stack: contextlib.ExitStack[bool | None], st: _State, m: Mount, work: Path
    ) -> RuntimeMount:
        from gantry.runtime.overlay import overlay
        from gantry.runtime.spec import Mount as RM

        assert m.target is not None
        target = m.target if m.target.startswith("/") else posixpath.join(st.workdir, m.target)
        if m.type == "tmpfs":
            opts = ("nosuid", "nodev") + ((f"size={m.size}",) if m.size else ())
            return RM(target, "tmpfs", "tmpfs", opts)
        if m.type == "cache":
            return self._cache_mount(stack, m, target, work)
        # bind: the context, a stage or an image; writes (rw) go to a throwaway upper
        source = self._mount_source(stack, m, work)
        if not m.readonly:
            up = work / f"rw-{len(os.listdir(work))}"
            for sub in ("upper", "work", "merged"):
                (up / sub).mkdir(parents=True)
            if source.is_dir():
                stack.enter_context(overlay(up / "merged", [source], up / "upper", up / "work"))
                source = up / "merged"
            else:
                copy = up / "upper" / source.name
                import shutil

                shutil.copy2(source, copy)
                source = copy
        return RM(
            target, "bind", str(source), ("rbind", "rprivate") + (("ro",) if m.readonly else ())
        )

    def _mount_source(self, stack: contextlib.ExitStack[bool | None], m: Mount, work: Path) -> Path:
        """Where a mount's ``source`` is on the host: in the context, a ``--build-context``
        directory, or a stage or image (mounted read-only below ``work``)."""
        from gantry.runtime.overlay import overlay
        from gantry.runtime.rootfs import resolve_in_root

        local = None if not m.from_ or self._used_stage(m.from_) else self._local_context(m.from_)
        if local is not None:
            base = local
        elif m.from_:
            used = self._used_stage(m.from_)
            chain = used.chain if used is not None else None
            if used is None:
                key = self._image_chain(m.from_)
                chain = None if key == "scratch" else Digest(key)
            src_root = work / f"from-{len(os.listdir(work))}"
            src_root.mkdir()
            empty = work / f"empty-{src_root.name}"
            empty.mkdir()
            lowers = self.store.lowerdirs(chain) if chain else [empty]
            stack.enter_context(overlay(src_root, lowers, readonly=True))
            base = src_root
        else:
            base = self.opts.context
        try:
            return resolve_in_root(base, m.source or "/")
        except (FileNotFoundError, NotADirectoryError):
            raise BuildError(
                f'failed to calculate checksum: "/{(m.source or "").lstrip("/")}": not found'
            ) from None

    def _from_identity(self, ref: str) -> str:
        """A ``from=`` as it stands in this build: the stage's filesystem key, the image's
        chain, or the ``--build-context`` directory."""
        used = self._used_stage(ref)
        if used is not None:
            return used.fs_key
        local = self._local_context(ref)
        if local is not None:
            return str(local)
        return self._image_chain(ref)

    def _cache_mount(
        self, stack: contextlib.ExitStack[bool | None], m: Mount, target: str, work: Path
    ) -> RuntimeMount:
        """``type=cache``: a directory kept in the store under its id, made on first use --
        empty (owned ``uid:gid``, ``mode``) or, with ``from=``, a copy of that stage's,
        image's or context's ``source`` (BuildKit keys such a cache on the id and its base,
        so another base is another cache). ``sharing=locked`` waits for the directory,
        ``private`` takes a new one of the same making while it is busy."""
        from gantry.runtime.spec import Mount as RM

        cid = m.cache_id or target
        ident = cid
        if m.from_:
            ident += "\0" + "\0".join((self._from_identity(m.from_), m.source or "/"))

        def make(d: Path) -> None:
            if m.from_:
                _seed_dir(self._mount_source(stack, m, work), d)
            else:
                d.mkdir()
                os.chown(d, m.uid or 0, m.gid or 0)
                os.chmod(d, 0o755 if m.mode is None else m.mode)

        d = self.store.root / "build" / "cache-mounts" / hashlib.sha256(ident.encode()).hexdigest()
        if not d.exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            tmp = d.with_name(d.name + f".tmp{os.getpid()}.{threading.get_ident()}")
            make(tmp)
            try:
                os.rename(tmp, d)
            except OSError:
                import shutil

                shutil.rmtree(tmp)  # someone else created it first
        if m.sharing in ("locked", "private"):
            import fcntl

            fd = os.open(str(d) + ".lock", os.O_CREAT | os.O_RDWR, 0o600)
            stack.callback(os.close, fd)
            if m.sharing == "locked":
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    d = work / f"private-cache-{len(os.listdir(work))}"
                    make(d)
        return RM(target, "bind", str(d), ("rbind", "rprivate") + (("ro",) if m.readonly else ()))

    def _run_env(self, st: _State, step: Step) -> list[str]:
        """A RUN's environment: the ARGs in scope, the image ENV, PATH, proxy build args.

        Values are the resolver's (a later ARG/ENV of the same name wins, as in BuildKit);
        the order (ARGs first, then ENV) is what the cache keys have always hashed.
        """
        values = step.run_env(self.opts.build_args)
        keys = [*step.build_args, *(e.partition("=")[0] for e in st.env), "PATH"]
        keys += [k for k in self.opts.build_args if k in PROXY_ARGS]
        out: dict[str, str] = {}
        for k in keys:
            if k in out:
                continue
            if k in values:
                out[k] = values[k]
            elif k == "PATH":
                out[k] = DEFAULT_PATH
        return [f"{k}={v}" for k, v in out.items()]

    # ------------------------------------------------------------------ WORKDIR

    def _workdir(self, st: _State, path: str) -> None:
        wd = posixpath.normpath(posixpath.join(st.workdir, path))
        if wd.startswith("//"):
            wd = wd[1:]
        st.cc["working_dir"] = wd
        if wd == "/":
            self._meta(st, hist.workdir(wd))
            return
        key = _key("workdir/1", st.fs_key, wd, st.user, self.epoch)
        name = self._prefix(st) + f"WORKDIR {path}"
        user = st.user

        def action(root: Path, n: int, work: Path) -> None:
            owner = None
            if user:
                from gantry.runtime.users import resolve_user

                u = resolve_user(root, user)
                owner = (u.uid, u.gid)
            _mkdir_in_root(root, wd, owner)

        layer, t = self._fs_step(st, name, key, "regular", action)
        self._layer_history(st, hist.workdir(wd), layer, t)

    # ------------------------------------------------------------------ COPY / ADD

    def _context_index(self, root: Path | None = None) -> ContextIndex:
        """The walked build context (or a named local context: ``root``)."""
        from gantry.dockerfile.context import context_matcher

        if root is None or root == self.opts.context:
            if self._index is None:
                known = self.known.entries if self.known is not None else None
                sig: str | None
                if known is not None:
                    assert self.known is not None
                    self._index = ContextIndex(self.opts.context, known)
                    # the memo signed exactly these entries when it walked them
                    sig = self.known.signature
                else:
                    matcher = context_matcher(self.opts.context, self.opts.dockerfile)
                    self._index = ContextIndex.walk(self.opts.context, matcher)
                    sig = memo.context_signature(self.opts.context, self._index.entries.items())
                if sig is None:
                    self.memo.refuse()
                self.memo.context = sig
            return self._index
        self.memo.refuse()
        with self._count_lock:
            index = self._named_indexes.get(root)
        if index is None:
            index = ContextIndex.walk(root, context_matcher(root, None))
            with self._count_lock:
                self._named_indexes[root] = index
        return index

    def _named(self, ref: str) -> tuple[str, str] | None:
        """``--build-context`` for ``ref``: ("image", REF) or ("local", DIR); None if none."""
        value = self.opts.build_contexts.get(ref)
        if value is None:
            return None
        if value.startswith("docker-image://"):
            return "image", value.removeprefix("docker-image://")
        if "://" in value or value.startswith("git@"):
            scheme = value.split("://", 1)[0]
            raise BuildError(
                f"build context {ref}: {scheme} sources are not supported yet "
                "(docker-image:// and local directories are)"
            )
        return "local", value

    def _image_ref(self, ref: str) -> str:
        named = self._named(ref)
        if named is None:
            return ref
        if named[0] == "local":
            raise BuildError(
                f"build context {ref} is a local directory: it can be used by COPY --from "
                "and RUN --mount from=, not as a base image"
            )
        return named[1]

    def _local_context(self, ref: str | None) -> Path | None:
        named = self._named(ref) if ref else None
        return Path(named[1]) if named is not None and named[0] == "local" else None

    def _used_stage(self, ref: str) -> _State | None:
        """The built state of the stage a ``--from``/``from=`` names; None for an image."""
        stage = self.plan.find(ref)
        return None if stage is None else self.states[stage.index]

    def _copy(self, st: _State, instr: CopyInstr | AddInstr) -> None:
        """COPY/ADD; ``instr`` has its words expanded by the resolver."""
        srcs = list(instr.sources)
        dest_raw = instr.dest
        chown = instr.chown or None
        chmod = instr.chmod or None
        from_ref = None
        local: Path | None = None
        if isinstance(instr, CopyInstr) and instr.from_:
            from_ref = self.plan.expand_from(instr.from_)
            if self._used_stage(from_ref) is None:
                local = self._local_context(from_ref)
                if local is not None:
                    from_ref = None
        urls: list[str] = []
        if isinstance(instr, AddInstr):
            from gantry.build import urls as remote

            for s in srcs:
                if remote.is_url(s):
                    urls.append(s)
                elif remote.is_git(s):
                    raise BuildError(
                        "ADD from a Git repository is not supported yet by gantry build"
                    )
            srcs = [s for s in srcs if s not in urls]
            if urls:
                self.memo.refuse()  # what a URL serves is asked again on every build
        dest = dest_raw
        if not dest.startswith("/"):
            dest = posixpath.join(st.workdir, dest)
            if dest_raw in (".", "./") or dest_raw.endswith("/"):
                dest = dest.rstrip("/") + "/"
        dest_is_dir = dest.endswith("/") or dest_raw.endswith("/.") or dest_raw == "."
        if len(srcs) + len(urls) + len(instr.contents) > 1 and not dest_is_dir:
            raise DockerfileError(
                f"When using {instr.keyword} with more than one source file, the destination "
                "must be a directory and end with a /",
                file=self.dockerfile_name,
                line=instr.start_line,
            )
        chmod_fn = parse_chmod(chmod) if chmod else None
        unpack = isinstance(instr, AddInstr) and instr.unpack is not False
        excludes = list(instr.excludes)
        parents = isinstance(instr, CopyInstr) and instr.parents
        link = instr.link
        parent_chain = st.chain

        # --- sources and their part of the key
        source_root: Path | None = None
        selections: list[Selected] = []
        #: the source each selection came from (``--parents`` keeps its path)
        sel_sources: list[str] = []
        key_sources: list[object] = []
        mount_stage: _State | None = None
        if from_ref is not None:
            used = self._used_stage(from_ref)
            if used is not None:
                mount_stage = used
                key_sources = ["stage", mount_stage.fs_key, srcs]
            else:
                img = self._image(from_ref)
                cfg = self.store.config(img)
                ids = chain_ids(cfg.diff_ids)
                mount_stage = _State(st.stage)
                mount_stage.chain = ids[-1] if ids else None
                key_sources = ["image", mount_stage.fs_key, srcs]
        else:
            index = self._context_index(local)
            source_root = index.root
            if local is not None:
                key_sources = ["local", str(local)]
            matcher = None
            if excludes:
                from gantry.dockerfile.ignore import PatternMatcher

                matcher = PatternMatcher(excludes)
            for s in srcs:
                sel = index.select(s)
                if not sel:
                    raise BuildError(f"lstat {s}: no source files were specified")
                for one in sel:
                    selections.append(one)
                    sel_sources.append(s)
                    lines: list[str] = []
                    top = one.path
                    if one.is_dir:
                        below: list[tuple[str, str, os.stat_result]] = []
                        stats = index.entries  # the walk's lstats, taken moments ago
                        for rel in index.below(one.rel):
                            sub = rel[len(one.rel) + 1 :] if one.rel else rel
                            if matcher is not None and matcher.matches_or_parent_matches(sub):
                                continue
                            below.append((sub, os.path.join(index.root, rel), stats[rel]))
                        name = json.dumps([top, excludes])
                        tree = tree_digest(top, os.stat(top), below, self._hashes, name)
                        key_sources.append([one.rel, one.is_dir, tree])
                    else:
                        base = posixpath.basename(one.rel)
                        lines.append(entry_record(top, base, os.stat(top), self._hashes))
                        key_sources.append([one.rel, one.is_dir, lines])
        heredocs = [(c.path, c.data) for c in instr.contents]
        multi = len(selections) + len(urls) + len(heredocs) > 1 or (
            mount_stage is not None and len(srcs) > 1
        )
        # --- ADD <url>: keyed by --checksum (no download when cached) or by the content
        url_key: list[object] = []
        fetched: dict[str, Fetched] = {}
        checksum = instr.checksum if isinstance(instr, AddInstr) else None
        downloads: Path | None = None
        if urls:
            from gantry.build import urls as remote

            if checksum:
                remote.check_checksum(checksum)
                url_key = [[u, remote.url_filename(u), checksum] for u in urls]
            else:
                downloads = self.store.scratch_dir("add")
                try:
                    for u in urls:
                        got = remote.fetch(u, downloads)
                        fetched[u] = got
                        url_key.append([u, got.filename, got.digest, got.last_modified])
                except BaseException:
                    _rmtree(downloads)
                    raise
        key = _key(
            "copy/1",
            instr.keyword,
            "link" if link else st.fs_key,
            dest,
            dest_is_dir or multi,
            chown,
            chmod,
            excludes,
            parents,
            key_sources,
            heredocs,
            self.epoch,
            *([url_key] if urls else []),
        )
        created_by = hist.copy(
            instr.keyword,
            list(instr.sources),
            [c.path for c in instr.contents],
            instr.dest,
            chown=instr.chown,
            chmod=instr.chmod,
            parents=parents,
        )
        name = self._prefix(st) + _uppercase(instr.original.strip().split("\n", 1)[0])

        def action(root: Path, n: int, work: Path) -> None:
            owner: tuple[int, int] | None = None
            if chown and link and parent_chain is not None and not _numeric_owner(chown):
                # names come from the image below, which a --link step does not see
                from gantry.runtime.overlay import overlay

                below = work / "below"
                below.mkdir()
                with overlay(below, self.store.lowerdirs(parent_chain), readonly=True):
                    owner = _resolve_chown(below, chown)
            elif chown:
                owner = _resolve_chown(root, chown)
            copts = CopyOptions(chown=owner, chmod=chmod_fn, unpack=unpack)
            to_dir = dest_is_dir or multi or parents
            if mount_stage is not None:
                from gantry.runtime.overlay import overlay

                src_root = work / "from"
                src_root.mkdir()
                lowers = self.store.lowerdirs(mount_stage.chain) if mount_stage.chain else [work]
                copts.keep_owner = True
                with overlay(src_root, lowers, readonly=True):
                    from gantry.runtime.rootfs import resolve_in_root

                    sels: list[Selected] = []
                    for s in srcs:
                        try:
                            real = resolve_in_root(src_root, s)
                        except (FileNotFoundError, NotADirectoryError):
                            raise BuildError(
                                f'failed to compute cache key: "/{s.lstrip("/")}": not found'
                            ) from None
                        sels.append(Selected(clean_source(s), str(real), real.is_dir()))
                    if parents:
                        for sel, src in zip(sels, srcs, strict=True):
                            _copy_with_parents(root, sel, src, dest, copts, None, None)
                    else:
                        _copy_selected(root, sels, dest, to_dir or len(sels) > 1, copts, None)
            else:
                assert source_root is not None
                exc = None
                if excludes:
                    from gantry.dockerfile.ignore import PatternMatcher

                    pm = PatternMatcher(excludes)
                    exc = pm.matches_or_parent_matches
                if parents:
                    for sel, src in zip(selections, sel_sources, strict=True):
                        _copy_with_parents(
                            root, sel, src, dest, copts, self._context_index(local), exc
                        )
                else:
                    _copy_selected(
                        root, selections, dest, to_dir, copts, self._context_index(local), exc
                    )
            if urls:
                from gantry.build import urls as remote

                (work / "urls").mkdir()
                got_urls = [
                    fetched.get(u) or remote.fetch(u, work / "urls", checksum=checksum)
                    for u in urls
                ]
                url_sels = [Selected(g.filename, str(g.path), False) for g in got_urls]
                url_opts = CopyOptions(chown=owner, chmod=chmod_fn)
                _copy_selected(root, url_sels, dest, to_dir, url_opts, None)
            for path, data in heredocs:
                target = dest if not to_dir else posixpath.join(dest, path.lstrip("/"))
                parent = posixpath.dirname(target.rstrip("/")) or "/"
                host_parent = _mkdir_in_root(root, parent, owner)
                fpath = host_parent / posixpath.basename(target.rstrip("/"))
                if fpath.exists() or fpath.is_symlink():
                    fpath.unlink()
                fpath.write_bytes(data.encode())
                mode = 0o644 if chmod_fn is None else chmod_fn(0o644, False)
                os.chmod(fpath, mode)
                if owner:
                    os.chown(fpath, *owner)

        try:
            layer, t = self._fs_step(st, name, key, "regular", action, link=link)
        finally:
            if downloads is not None:
                _rmtree(downloads)
        self._layer_history(st, created_by, layer, t)

    # ------------------------------------------------------------------ commit

    def _squash(self, st: _State) -> None:
        """Replace the layers above the base image by one (their merged upper dirs)."""
        from gantry.build.squash import merge_uppers

        keep, top = st.layers[: st.base_layers], st.layers[st.base_layers :]
        if len(top) < 2 or st.chain is None:
            return
        n = self.progress.vertex(f"squashing {len(top)} layers")
        dirs = self.store.lowerdirs(st.chain)[: len(top)]  # top first
        ids = chain_ids([layer.diff_id for layer in keep])
        parent = ids[-1] if ids else None
        work = self.store.scratch_dir("squash")
        try:
            merged = work / "merged"
            merge_uppers(list(reversed(dirs)), merged)
            layer, chain = self._layer_from(merged, parent)
        finally:
            _rmtree(work)
        diff = layer.diff_id
        st.layers = [*keep, layer]
        st.chain = chain
        merged_from = [str(layer.diff_id) for layer in top]
        st.history = [
            h if i < st.base_history or h.empty_layer else dataclasses.replace(h, empty_layer=True)
            for i, h in enumerate(st.history)
        ]
        st.history.append(
            History(
                created_by="",
                comment=f"merge {' '.join(merged_from)} to {diff}",
            )
        )
        st.new_times.append(time.time() if self.epoch is None else float(self.epoch))
        self.progress.done(n)

    def _commit(self, st: _State) -> Image:
        if self.opts.squash:
            self._squash(st)
        labels = dict(st.labels)
        labels.update(self.opts.labels)
        cc = ContainerConfig(
            user=st.user,
            exposed_ports=tuple(st.exposed),
            env=tuple(st.env),
            entrypoint=st.cc.get("entrypoint"),  # type: ignore[arg-type]
            cmd=st.cc.get("cmd"),  # type: ignore[arg-type]
            volumes=tuple(st.volumes),
            working_dir=str(st.cc.get("working_dir") or ""),
            labels=labels,
            stop_signal=str(st.cc.get("stop_signal") or ""),
            args_escaped=bool(st.cc.get("args_escaped")),
            healthcheck=st.cc.get("healthcheck"),  # type: ignore[arg-type]
            on_build=tuple(st.onbuild),
            shell=st.cc.get("shell"),  # type: ignore[arg-type]
        )
        history, created = self._times(st)
        config = ImageConfig(
            architecture=st.architecture or host_arch()[0],
            os=st.os or "linux",
            variant=st.variant,
            config=cc,
            rootfs=RootFS(diff_ids=tuple(layer.diff_id for layer in st.layers)),
            history=tuple(history),
            created=created,
            author=st.author,
        )
        raw = config.to_json()
        config_digest = self.store.content.write(raw)
        manifest = Manifest(
            config=Descriptor(mediatypes.OCI_CONFIG, config_digest, len(raw)),
            layers=tuple(layer.descriptor for layer in st.layers),
        )
        sizes = {str(layer.descriptor.digest): layer.size for layer in st.layers if layer.size}
        n = self.progress.vertex("exporting to image")
        image = self.store.add_image(
            manifest.to_json(), tags=self.opts.tags, layer_sizes=sizes or None
        )
        self.progress.info(n, f"writing image {image.id} done")
        for t in self.opts.tags:
            self.progress.info(n, f"naming to {_full_name(t)} done")
        self.progress.done(n)
        return image

    def _times(self, st: _State) -> tuple[list[History], str | None]:
        """History times as BuildKit's exporter fills them; the config's ``created``."""
        fmt = _rfc3339
        times = list(st.new_times)
        first_new: float | None = next((t for t in times if t is not None), None)
        out: list[History] = []
        current = first_new
        for i, h in enumerate(st.history):
            if i < st.base_history:
                out.append(h)
                continue
            t = times[i]
            if t is not None:
                current = t
            else:
                t = current
            if self.epoch is not None:
                t = float(self.epoch)
            out.append(
                History(
                    created=fmt(t) if t is not None else None,
                    created_by=h.created_by,
                    author=h.author,
                    comment=h.comment,
                    empty_layer=h.empty_layer,
                )
            )
        if self.epoch is not None:
            return out, fmt(float(self.epoch))
        last = next((t for t in reversed(times) if t is not None), None)
        if last is not None:
            return out, fmt(last)
        return out, st.base_created or fmt(time.time())


class StepFailed(BuildError):
    """A RUN step exited non-zero (or a COPY failed): where, how, and its last output."""

    def __init__(
        self,
        message: str,
        *,
        step: str,
        file: str,
        line: int,
        end_line: int,
        tail: list[str],
        source: list[str],
        exit_code: int,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.file = file
        self.line = line
        self.end_line = end_line
        self.tail = tail
        self.source = source
        self.step_exit_code = exit_code

    def details(self) -> str:
        """BuildKit's failure block: the step's last output and the Dockerfile excerpt."""
        out = ["------", f" > {self.step}:"]
        out += [line for line in self.tail]
        out.append("------")
        from gantry.build.report import excerpt

        out += excerpt(self.file, self.source, self.line, self.end_line)
        return "\n".join(out)


# ---------------------------------------------------------------------- helpers


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _chain_of(parent: Digest | None, diff_id: Digest) -> Digest:
    """The OCI chain ID of ``diff_id`` on top of the chain ``parent``."""
    if parent is None:
        return diff_id
    return Digest("sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest())


def _rfc3339(t: float) -> str:
    return rfc3339(datetime.fromtimestamp(t, UTC))


def _full_name(ref: str) -> str:
    from gantry.errors import InvalidReference
    from gantry.reference import parse_docker_ref

    try:
        return str(parse_docker_ref(ref))
    except InvalidReference:
        return ref


def _uppercase(text: str) -> str:
    head, sep, rest = text.partition(" ")
    return head.upper() + sep + rest


def _port_specs(word: str) -> list[str]:
    proto = "tcp"
    port = word
    if "/" in word:
        port, proto = word.split("/", 1)
        proto = proto.lower() or "tcp"
    if ":" in port:
        port = port.rsplit(":", 1)[1]
    if "-" in port:
        lo, hi = port.split("-", 1)
        if lo.isdigit() and hi.isdigit():
            return [f"{p}/{proto}" for p in range(int(lo), int(hi) + 1)]
    if not port.isdigit():
        raise BuildError(f"invalid containerPort: {port}")
    return [f"{port}/{proto}"]


_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


def parse_source_date_epoch(value: str) -> int | None:
    """The ``SOURCE_DATE_EPOCH`` build arg as BuildKit reads it: empty is unset, else a
    decimal int64 (sign allowed); anything else fails the build in BuildKit's words."""
    if value == "":
        return None
    if not _GO_INT.match(value):
        why = "invalid syntax"
    elif not -(1 << 63) <= int(value) < 1 << 63:
        why = "value out of range"
    else:
        return int(value)
    from gantry.dockerfile.goquote import go_quote

    raise BuildError(
        f"invalid SOURCE_DATE_EPOCH: {value}: strconv.ParseInt: parsing {go_quote(value)}: {why}"
    )


def _resolve_chown(root: Path, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]``: names from the image; a lone user gives gid = uid (Docker)."""
    from gantry.runtime.rootfs import read_file_in_root
    from gantry.runtime.users import parse_group, parse_passwd

    user, _, group = spec.partition(":")

    def lookup(name: str, kind: str) -> int:
        if name.isdigit():
            return int(name)
        path = "/etc/passwd" if kind == "user" else "/etc/group"
        data = read_file_in_root(root, path) or b""
        entries = parse_passwd(data) if kind == "user" else parse_group(data)
        for e in entries:
            if e.name == name:
                return e.uid if kind == "user" else e.gid  # type: ignore[union-attr]
        raise BuildError(
            f"unable to convert uid/gid chown string to host mapping: can't find "
            f"{'uid' if kind == 'user' else 'gid'} for {kind} {name}: no such {kind}: {name}"
        )

    uid = lookup(user, "user")
    if group:
        return uid, lookup(group, "group")
    return uid, uid


def _mkdir_in_root(root: Path, path: str, owner: tuple[int, int] | None) -> Path:
    """``mkdir -p`` of ``path`` inside ``root`` without leaving it; the host path."""
    from gantry.runtime.rootfs import resolve_in_root

    cur = "/"
    host = Path(os.path.realpath(root))
    for part in [p for p in path.split("/") if p and p != "."]:
        nxt = posixpath.join(cur, part)
        try:
            h = resolve_in_root(root, nxt)
        except FileNotFoundError:
            h = host / part
            os.mkdir(h, 0o755)
            if owner is not None:
                os.chown(h, *owner)
        if not h.is_dir():
            raise BuildError(f"cannot create directory {path}: {nxt} is not a directory")
        host = h
        cur = nxt
    return host


def _copy_selected(
    root: Path,
    sels: Sequence[Selected],
    dest: str,
    to_dir: bool,
    opts: CopyOptions,
    index: ContextIndex | None,
    exclude: object = None,
) -> None:
    excluded = exclude  # Callable[[str], bool] | None
    for sel in sels:
        if sel.is_dir:
            target_dir = _mkdir_in_root(root, dest, opts.chown)
            _copy_tree(sel, target_dir, opts, index, excluded)
            continue
        if opts.unpack and is_archive(sel.path):
            from gantry.layers.extract import extract

            target_dir = _mkdir_in_root(root, dest, opts.chown)
            with open(sel.path, "rb") as f:
                extract(f, target_dir, mode="apply")
            continue
        if to_dir:
            parent = _mkdir_in_root(root, dest, opts.chown)
            target = parent / posixpath.basename(sel.rel or sel.path)
        else:
            d = dest.rstrip("/")
            parent = _mkdir_in_root(root, posixpath.dirname(d) or "/", opts.chown)
            target = parent / posixpath.basename(d)
            if target.is_dir() and not target.is_symlink():
                target = target / posixpath.basename(sel.rel or sel.path)
        copy_file(sel.path, str(target), os.stat(sel.path), opts)


def _numeric_owner(spec: str) -> bool:
    return all(part.isdigit() for part in spec.split(":") if part)


def _parents_path(source: str, rel: str) -> str:
    """What ``COPY --parents`` keeps of a selected path: all of it, or what follows a
    ``/./`` pivot in the source (``./src/./pkg/*`` keeps ``pkg/...``)."""
    text = source.lstrip("/")
    while text.startswith("./"):
        text = text[2:]
    if "/./" not in text:
        return rel
    prefix = clean_source(text.split("/./", 1)[0])
    if prefix and (rel == prefix or rel.startswith(prefix + "/")):
        return rel[len(prefix) :].lstrip("/")
    return rel


def _copy_with_parents(
    root: Path,
    sel: Selected,
    source: str,
    dest: str,
    opts: CopyOptions,
    index: ContextIndex | None,
    exclude: object,
) -> None:
    """One selection of ``COPY --parents``: below ``dest`` at its own (pivoted) path."""
    keep = _parents_path(source, sel.rel)
    if sel.is_dir:
        _copy_selected(root, [sel], posixpath.join(dest, keep) + "/", True, opts, index, exclude)
    else:
        parent = posixpath.join(dest, posixpath.dirname(keep)) + "/"
        _copy_selected(root, [sel], parent, True, opts, index, exclude)


def _copy_tree(
    sel: Selected,
    target_dir: Path,
    opts: CopyOptions,
    index: ContextIndex | None,
    excluded: object,
) -> None:
    dirs: list[tuple[str, os.stat_result, bool]] = []
    items: list[tuple[str, str]]
    if index is not None:
        base = sel.rel
        items = [
            (rel[len(base) + 1 :] if base else rel, os.path.join(index.root, rel))
            for rel in index.below(base)
        ]
    else:
        items = _walk_host(sel.path)
    for sub, src in items:
        if excluded is not None and excluded(sub):  # type: ignore[operator]
            continue
        st = os.lstat(src)
        dst = os.path.join(target_dir, sub)
        created = stat.S_ISDIR(st.st_mode) and not os.path.isdir(dst)
        copy_file(src, dst, st, opts)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((dst, st, created))
    for dst, st, created in reversed(dirs):
        copy_dir_finish(dst, st, opts, created)


def _seed_dir(source: Path, d: Path) -> None:
    """``d`` (new) as a copy of the directory ``source``: contents, owners, modes, times
    and ``user.*`` xattrs, and ``source``'s own metadata."""
    if not source.is_dir():
        raise BuildError(f"cache mount source {source.name!r} is not a directory")
    keep = CopyOptions(keep_owner=True)
    top = os.stat(source)
    copy_file(str(source), str(d), top, keep)
    dirs: list[tuple[str, os.stat_result]] = [(str(d), top)]
    for sub, src in _walk_host(str(source)):
        st = os.lstat(src)
        dst = os.path.join(d, sub)
        copy_file(src, dst, st, keep)
        if stat.S_ISDIR(st.st_mode):
            dirs.append((dst, st))
    for dst, st in reversed(dirs):
        copy_dir_finish(dst, st, keep, True)


def _walk_host(top: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def rec(rel: str) -> None:
        base = os.path.join(top, rel) if rel else top
        for name in sorted(os.listdir(base)):
            r = f"{rel}/{name}" if rel else name
            p = os.path.join(top, r)
            out.append((r, p))
            if os.path.isdir(p) and not os.path.islink(p):
                rec(r)

    rec("")
    return out


def build(store: Store, opts: BuildOptions, progress: Progress | None = None) -> BuildResult:
    """Build ``opts`` into ``store``; see :class:`BuildOptions`.

    A build whose inputs and everything it relied on are unchanged since the last one is
    answered from the build memo (:mod:`gantry.build.memo`) without solving it again.
    """
    known = memo.answer(store, opts, progress)
    if known.result is not None:
        return known.result
    builder = Builder(store, opts, progress)
    builder.known = known
    return builder.build()
