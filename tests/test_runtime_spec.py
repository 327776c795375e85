"""gantry.runtime.spec/seccomp/etcfiles: generated config.json against the runtime-spec schema
and Docker's defaults. No root needed: nothing here mounts or runs."""

from __future__ import annotations

import json
import resource
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from conftest import CONFORMANCE
from gantry.errors import UsageError
from gantry.runtime import seccomp
from gantry.runtime.etcfiles import hosts_content, resolv_conf_content, write_etc_files
from gantry.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    MASKED_PATHS,
    Mount,
    Resources,
    Rlimit,
    SpecOptions,
    bind_mount,
    capabilities,
    capped_rlimits,
    generate,
    host_capabilities,
    parse_ulimit,
    tmpfs_mount,
    write_config,
)
from gantry.runtime.users import ExecUser

SCHEMA_DIR = CONFORMANCE / "runtime-spec" / "schema"
SCHEMA_TESTS = SCHEMA_DIR / "test"


def _retrieve(uri: str) -> Resource[Any]:
    # $refs name sibling files ("defs.json#/definitions/..."), as the spec's Go validator loads them.
    name = urlsplit(uri).path.rsplit("/", 1)[-1]
    return DRAFT4.create_resource(json.loads((SCHEMA_DIR / name).read_text()))


@cache
def _validator(schema: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(
        json.loads((SCHEMA_DIR / schema).read_text()), registry=Registry(retrieve=_retrieve)
    )


def spec_errors(doc: str | bytes | dict[str, Any], schema: str = "config-schema.json") -> list[str]:
    """Schema violations of a runtime-spec document, [] when it is valid."""
    if not isinstance(doc, dict):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            return [f"invalid JSON: {e}"]
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator(schema).iter_errors(doc)]


# ----------------------------------------------------------------- the validator itself

_KINDS = {
    "config": "config-schema.json",
    "state": "state-schema.json",
    "features": "features-schema.json",
}


@pytest.mark.parametrize(
    "path",
    sorted(SCHEMA_TESTS.glob("*/*/*.json")),
    ids=lambda p: "/".join(p.parts[-3:]),
)
def test_schema_examples_are_classified(path: Path) -> None:
    kind, verdict = path.parts[-3], path.parts[-2]
    errors = spec_errors(path.read_bytes(), _KINDS[kind])
    if verdict == "good":
        assert errors == []
    else:
        assert errors, f"{path.name} should be rejected"


def test_examples_exist() -> None:
    assert len(list(SCHEMA_TESTS.glob("config/good/*.json"))) >= 5
    assert len(list(SCHEMA_TESTS.glob("config/bad/*.json"))) >= 4


# ----------------------------------------------------------------- generated configs


ROOTLESS_USER = ExecUser(1000, 1000, (1000, 27), "/home/u", "u")

VARIANTS: dict[str, SpecOptions] = {
    "default": SpecOptions(args=["/bin/sh", "-c", "true"]),
    "build-step": SpecOptions(
        args=["/bin/sh", "-c", "apk add x"],
        env=["PATH=/bin", "A=b"],
        cwd="/work",
        hostname="buildkitsandbox",
        hosts_file="/b/hosts",
        resolv_conf="/b/resolv.conf",
        etc_files_readonly=True,
    ),
    "network-none": SpecOptions(args=["true"], network="none"),
    "netns-path": SpecOptions(args=["true"], network="/run/netns/x"),
    "user": SpecOptions(args=["id"], user=ROOTLESS_USER, umask=0o022),
    "everything": SpecOptions(
        args=["top"],
        terminal=True,
        readonly_rootfs=True,
        hostname="web",
        mounts=[
            bind_mount("/srv/data", "/data", readonly=True),
            tmpfs_mount("/run", ["size=1m"]),
            Mount("/data/cache", "tmpfs", "tmpfs"),
        ],
        cap_add=["NET_ADMIN", "sys_ptrace"],
        cap_drop=["MKNOD"],
        no_new_privileges=True,
        rlimits=[Rlimit("RLIMIT_NOFILE", 1024, 4096), Rlimit("RLIMIT_CORE", 0, 0)],
        cgroups_path="/gantry/abc",
        resources=Resources(
            memory=64 << 20,
            memory_swap=128 << 20,
            cpu_shares=512,
            cpu_quota=50000,
            cpu_period=100000,
            cpuset_cpus="0",
            pids_limit=100,
        ),
        oom_score_adj=100,
        sysctl={"net.ipv4.ip_forward": "1"},
        annotations={"org.gantry.x": "y"},
        pid_namespace="host",
    ),
    "privileged": SpecOptions(args=["sh"], privileged=True),
    "unconfined": SpecOptions(args=["sh"], seccomp=False),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_generated_configs_validate(name: str) -> None:
    spec = generate(VARIANTS[name])
    assert spec_errors(spec) == []
    # And what is written to disk is the same document.
    assert json.loads(json.dumps(spec)) == spec


def test_schema_would_catch_a_broken_generated_config() -> None:
    spec = generate(VARIANTS["everything"])
    spec["linux"]["namespaces"].append({"type": "bogus"})
    assert spec_errors(spec)
    spec = generate(VARIANTS["default"])
    spec["process"]["user"]["uid"] = -1
    assert spec_errors(spec)


def test_write_config_is_atomic_and_readable(tmp_path: Path) -> None:
    spec = generate(VARIANTS["default"])
    path = write_config(tmp_path / "bundle", spec)
    assert json.loads(path.read_text()) == spec
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


# ----------------------------------------------------------------- Docker's defaults


def test_default_spec_is_dockers() -> None:
    spec = generate(SpecOptions(args=["sh"]))
    proc = spec["process"]
    assert proc["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert proc["cwd"] == "/"
    assert proc["terminal"] is False
    assert proc["noNewPrivileges"] is False
    assert proc["env"][0].startswith("PATH=/usr/local/sbin:")
    assert "HOME=/root" in proc["env"]
    caps = proc["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == list(DEFAULT_CAPABILITIES)
    assert "inheritable" not in caps and "ambient" not in caps
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    shm = spec["mounts"][-1]
    assert "size=65536k" in shm["options"] and "mode=1777" in shm["options"]
    sys_mount = spec["mounts"][3]
    assert "ro" in sys_mount["options"]
    ns = [n["type"] for n in spec["linux"]["namespaces"]]
    assert ns == ["mount", "pid", "ipc", "uts"]  # host network for builds
    assert spec["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    devices = spec["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in devices
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert spec["root"] == {"path": "rootfs", "readonly": False}


def test_docker_default_capability_mask() -> None:
    # CapBnd of `docker run busybox grep Cap /proc/self/status` is 00000000a80425fb.
    mask = sum(1 << ALL_CAPABILITIES.index(c) for c in DEFAULT_CAPABILITIES)
    assert mask == 0xA80425FB


def test_non_root_gets_only_bounding_caps() -> None:
    spec = generate(SpecOptions(args=["id"], user=ROOTLESS_USER))
    assert spec["process"]["capabilities"] == {"bounding": list(DEFAULT_CAPABILITIES)}
    assert spec["process"]["user"]["additionalGids"] == [1000, 27]
    assert "HOME=/home/u" in spec["process"]["env"]


def test_user_env_wins_over_defaults() -> None:
    spec = generate(SpecOptions(args=["x"], env=["PATH=/opt", "HOME=/h"]))
    assert spec["process"]["env"] == ["PATH=/opt", "HOME=/h"]
    spec = generate(SpecOptions(args=["x"], env=["A=1"], add_default_env=False))
    assert spec["process"]["env"] == ["A=1"]


@pytest.mark.parametrize(
    ("add", "drop", "want_in", "want_out"),
    [
        (["net_admin"], [], ["CAP_NET_ADMIN", "CAP_CHOWN"], []),
        (["CAP_SYS_ADMIN"], ["chown"], ["CAP_SYS_ADMIN"], ["CAP_CHOWN"]),
        (["ALL"], ["NET_RAW"], ["CAP_SYS_MODULE", "CAP_BPF"], ["CAP_NET_RAW"]),
        (["NET_BIND_SERVICE"], ["ALL"], ["CAP_NET_BIND_SERVICE"], ["CAP_CHOWN"]),
        ([], ["all"], [], list(DEFAULT_CAPABILITIES)),
    ],
)
def test_cap_add_drop(
    add: list[str], drop: list[str], want_in: list[str], want_out: list[str]
) -> None:
    caps = capabilities(add, drop)
    for c in want_in:
        assert c in caps
    for c in want_out:
        assert c not in caps
    assert len(caps) == len(set(caps))


def test_invalid_capability() -> None:
    with pytest.raises(UsageError, match="invalid capability: NOPE"):
        capabilities(["NOPE"])


def test_privileged() -> None:
    spec = generate(SpecOptions(args=["sh"], privileged=True))
    have = host_capabilities()
    assert have is not None
    # every capability this process has, in Docker's order, and none it lacks
    assert spec["process"]["capabilities"]["bounding"] == [c for c in ALL_CAPABILITIES if c in have]
    assert "seccomp" not in spec["linux"]
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]


def test_network_modes() -> None:
    def net(o: SpecOptions) -> list[dict[str, str]]:
        return [n for n in generate(o)["linux"]["namespaces"] if n["type"] == "network"]

    assert net(SpecOptions(args=["x"])) == []
    assert net(SpecOptions(args=["x"], network="none")) == [{"type": "network"}]
    assert net(SpecOptions(args=["x"], network="/run/netns/a")) == [
        {"type": "network", "path": "/run/netns/a"}
    ]
    with pytest.raises(UsageError):
        generate(SpecOptions(args=["x"], network="bridge"))


def test_user_mounts_replace_defaults_and_sort_by_depth() -> None:
    spec = generate(
        SpecOptions(
            args=["x"],
            hosts_file="/b/hosts",
            mounts=[
                Mount("/a/b/c", "tmpfs", "tmpfs"),
                bind_mount("/host/shm", "/dev/shm"),
                Mount("/a", "tmpfs", "tmpfs"),
                bind_mount("/h2", "/etc/hosts", readonly=True),
            ],
        )
    )
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.count("/dev/shm") == 1 and dests.count("/etc/hosts") == 1
    shm = next(m for m in spec["mounts"] if m["destination"] == "/dev/shm")
    assert shm["source"] == "/host/shm"
    hosts = next(m for m in spec["mounts"] if m["destination"] == "/etc/hosts")
    assert hosts["source"] == "/h2" and "ro" in hosts["options"]
    assert dests.index("/a") < dests.index("/a/b/c")
    with pytest.raises(UsageError, match="must be absolute"):
        generate(SpecOptions(args=["x"], mounts=[Mount("rel", "tmpfs", "tmpfs")]))


def test_tmpfs_defaults() -> None:
    assert tmpfs_mount("/t").options == ("noexec", "nosuid", "nodev")
    assert tmpfs_mount("/t", ["exec", "size=1m"]).options == ("exec", "size=1m", "nosuid", "nodev")


def test_rlimits_never_exceed_our_hard_limits() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    (nofile,) = capped_rlimits(None)
    assert nofile.type == "RLIMIT_NOFILE"
    if hard != resource.RLIM_INFINITY:
        assert nofile.hard <= hard and nofile.soft <= nofile.hard
    huge = capped_rlimits([Rlimit("RLIMIT_NOFILE", 10**9, 10**9), Rlimit("RLIMIT_CORE", 0, 0)])
    assert huge[0].hard == min(10**9, hard if hard != resource.RLIM_INFINITY else 10**9)
    assert huge[1] == Rlimit("RLIMIT_CORE", 0, 0)
    spec = generate(SpecOptions(args=["x"], rlimits=[Rlimit("RLIMIT_NOFILE", 10**9, 10**9)]))
    (r,) = spec["process"]["rlimits"]
    assert r["hard"] == huge[0].hard


def test_parse_ulimit() -> None:
    assert parse_ulimit("nofile=1024:2048") == Rlimit("RLIMIT_NOFILE", 1024, 2048)
    assert parse_ulimit("core=0") == Rlimit("RLIMIT_CORE", 0, 0)
    for bad in ("nofile", "bogus=1", "nofile=a", "nofile=10:5"):
        with pytest.raises(UsageError):
            parse_ulimit(bad)


def test_resources() -> None:
    spec = generate(VARIANTS["everything"])
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}
    assert res["pids"] == {"limit": 100}
    assert Resources.from_cpus(1.5) == Resources(cpu_period=100000, cpu_quota=150000)


def test_bad_options() -> None:
    with pytest.raises(UsageError, match="no command"):
        generate(SpecOptions(args=[]))
    with pytest.raises(UsageError, match="absolute path"):
        generate(SpecOptions(args=["x"], cwd="work"))


# ----------------------------------------------------------------- seccomp


def test_seccomp_profile_shape() -> None:
    prof = seccomp.default_profile(DEFAULT_CAPABILITIES, machine="x86_64")
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO" and prof["defaultErrnoRet"] == 1
    assert prof["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = set(prof["syscalls"][0]["names"])
    for name in ("read", "execve", "openat", "clock_gettime", "arch_prctl", "chroot"):
        assert name in allowed
    for name in ("mount", "unshare", "setns", "kexec_load", "init_module", "reboot", "keyctl"):
        assert name not in allowed
    clone = [r for r in prof["syscalls"] if r["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    clone3 = [r for r in prof["syscalls"] if r["names"] == ["clone3"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_seccomp_follows_capabilities() -> None:
    prof = seccomp.default_profile([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], machine="x86_64")
    allowed = set(prof["syscalls"][0]["names"])
    assert {"mount", "unshare", "clone", "clone3"} <= allowed
    assert not [r for r in prof["syscalls"] if r["names"] == ["clone3"]]
    no_chroot = seccomp.default_profile(["CAP_CHOWN"], machine="x86_64")
    assert "chroot" not in no_chroot["syscalls"][0]["names"]


def test_seccomp_in_spec_follows_cap_add() -> None:
    spec = generate(SpecOptions(args=["x"], cap_add=["SYS_TIME"]))
    assert "settimeofday" in spec["linux"]["seccomp"]["syscalls"][0]["names"]
    custom = {"defaultAction": "SCMP_ACT_ALLOW"}
    assert generate(SpecOptions(args=["x"], seccomp=custom))["linux"]["seccomp"] == custom


# ----------------------------------------------------------------- etc files


def test_hosts_content() -> None:
    text = hosts_content("abc", extra_hosts=[("db", "10.0.0.2")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost abc"
    assert "10.0.0.2\tdb" in lines
    assert hosts_content("web", ip="172.17.0.2").splitlines()[-1] == "172.17.0.2\tweb"


def test_resolv_conf() -> None:
    host = "# generated\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\noptions edns0\n"
    assert resolv_conf_content(host, network="host") == (
        "nameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\noptions edns0\n"
    )
    own = resolv_conf_content(host, network="none")
    assert "127.0.0.53" not in own and "nameserver 10.1.1.1" in own
    only_local = resolv_conf_content("nameserver 127.0.0.1\nnameserver ::1\n", network="/netns")
    assert only_local == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    flags = resolv_conf_content(host, dns=["1.1.1.1"], dns_search=["."], dns_options=["ndots:2"])
    assert flags == "nameserver 1.1.1.1\noptions ndots:2\n"


def test_write_etc_files(tmp_path: Path) -> None:
    resolv = tmp_path / "host-resolv"
    resolv.write_text("nameserver 127.0.0.53\n")
    hosts, res, name = write_etc_files(
        tmp_path / "b", hostname="box", network="none", host_resolv_conf=resolv
    )
    assert "box" in hosts.read_text()
    assert res.read_text() == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert name.read_text() == "box\n"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "hostname",
        "hosts",
        "resolv.conf",
    ]
