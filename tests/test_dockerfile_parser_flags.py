"""Every instruction flag and its value syntax, through the text parser and the typed layer."""

from __future__ import annotations

import pytest

from gantry.dockerfile.durations import DurationError, format_duration, parse_duration
from gantry.dockerfile.instructions import (
    AddInstr,
    CopyInstr,
    FromInstr,
    HealthcheckInstr,
    Instruction,
    RunInstr,
    parse_dockerfile,
)
from gantry.dockerfile.mounts import MountError, parse_mount, parse_size
from gantry.errors import DockerfileError


def last(text: str) -> Instruction:
    return parse_dockerfile("FROM scratch\n" + text).instructions[-1]


def error(text: str) -> str:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM scratch\n" + text)
    assert info.value.line == 2
    return str(info.value).removeprefix("dockerfile parse error on line 2: ")


def test_from_platform_and_stage_name() -> None:
    instr = parse_dockerfile("FROM --platform=linux/arm64 alpine:3 AS Builder").instructions[0]
    assert isinstance(instr, FromInstr)
    assert (instr.image, instr.stage_name, instr.platform) == ("alpine:3", "builder", "linux/arm64")
    assert error("FROM a AS 1x") == (
        'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'
    )
    assert error("FROM a b") == "FROM requires either one or three arguments"
    assert error("FROM --platform alpine") == "missing a value on flag: --platform"
    assert (
        error("FROM --platfrom=x alpine") == "unknown flag: --platfrom (did you mean --platform?)"
    )


def test_copy_flags() -> None:
    instr = last(
        "COPY --from=build --chown=app:staff --chmod=0755 --link --parents "
        "--exclude=*.md --exclude=tmp/ a b /dst/"
    )
    assert isinstance(instr, CopyInstr)
    assert instr.from_ == "build" and instr.chown == "app:staff" and instr.chmod == "0755"
    assert instr.link and instr.parents and instr.excludes == ("*.md", "tmp/")
    assert instr.sources == ("a", "b") and instr.dest == "/dst/"
    plain = last("COPY a b")
    assert isinstance(plain, CopyInstr)
    assert (plain.from_, plain.link, plain.parents, plain.excludes) == (None, False, False, ())
    assert isinstance(last("COPY --link=false a b"), CopyInstr)
    assert not last("COPY --link=FALSE a b").link  # type: ignore[attr-defined]  # a CopyInstr


def test_copy_json_form_and_heredoc_sources() -> None:
    instr = last('COPY ["a b", "/c d/"]')
    assert isinstance(instr, CopyInstr) and instr.json_form
    assert instr.sources == ("a b",) and instr.dest == "/c d/"
    instr = last("COPY <<-one.txt <<'two' /dst/\n\tx $A\none.txt\ny\ntwo\n")
    assert isinstance(instr, CopyInstr)
    assert [(c.path, c.data, c.expand) for c in instr.contents] == [
        ("one.txt", "x $A\n", True),
        ("two", "y\n", False),
    ]
    assert instr.sources == ()
    assert error("COPY a <<EOF\nx\nEOF\n") == "COPY cannot accept a heredoc as a destination"


@pytest.mark.parametrize(
    "mode", ["0644", "755", "4755", "u+x", "u=rwx,g=rx,o=", "a-w", "+x", "go-rwx", "${MODE}"]
)
def test_chmod_accepts(mode: str) -> None:
    assert last(f"COPY --chmod={mode} a b").chmod == mode  # type: ignore[attr-defined]  # a CopyInstr


@pytest.mark.parametrize("mode", ["0999", "rwx", "u+q", "u+x,", "abc"])
def test_chmod_rejects(mode: str) -> None:
    assert error(f"COPY --chmod={mode} a b").startswith(f"invalid chmod parameter {mode}")


def test_chown() -> None:
    assert last("COPY --chown=1000 a b").chown == "1000"  # type: ignore[attr-defined]  # a CopyInstr
    assert last("ADD --chown=${U}:${G} a b").chown == "${U}:${G}"  # type: ignore[attr-defined]  # an AddInstr
    assert error("COPY --chown=:g a b").startswith('invalid chown parameter ":g"')
    assert error("COPY --chown=a:b:c a b").startswith("invalid chown parameter")


def test_add_flags() -> None:
    digest = "sha256:" + "0" * 64
    instr = last(f"ADD --checksum={digest} --keep-git-dir=true --unpack --link https://x/a.tgz /")
    assert isinstance(instr, AddInstr)
    assert (instr.checksum, instr.keep_git_dir, instr.unpack, instr.link) == (
        digest,
        True,
        True,
        True,
    )
    instr = last("ADD a /")
    assert isinstance(instr, AddInstr) and instr.unpack is None and instr.checksum is None
    assert last("ADD --unpack=false a /").unpack is False  # type: ignore[attr-defined]  # an AddInstr
    assert error("ADD --checksum=md5:00 https://x/a /") == "unsupported digest algorithm: md5"
    assert (
        error("ADD --checksum=sha256:abc https://x/a /")
        == "invalid checksum digest length: sha256:abc"
    )
    assert error("ADD --from=x a /") == "unknown flag: --from"
    assert error("COPY --checksum=x a /") == "unknown flag: --checksum"


def test_bool_and_string_flag_errors() -> None:
    assert error("COPY --link=yes a b") == "expecting boolean value for flag --link, not: yes"
    assert error("COPY --link= a b") == "missing a value on flag: --link"
    assert error("COPY --from a b") == "missing a value on flag: --from"
    assert error("COPY --from=a --from=b a b") == "duplicate flag specified: --from"
    assert error("COPY --form=a a b") == "unknown flag: --form (did you mean --from?)"
    assert error("USER --x=1 me") == "unknown flag: --x"


def test_flag_after_double_dash_is_an_argument() -> None:
    instr = last("COPY -- --weird-name /dst")
    assert isinstance(instr, CopyInstr) and instr.sources == ("--weird-name",)


def test_run_flags() -> None:
    instr = last(
        "RUN --mount=type=bind,from=build,source=/out,target=/in,rw "
        "--mount=type=tmpfs,target=/t,size=64m --network=host --security=insecure make"
    )
    assert isinstance(instr, RunInstr)
    bind, tmpfs = instr.mounts
    assert (bind.type, bind.from_, bind.source, bind.target, bind.readonly) == (
        "bind",
        "build",
        "/out",
        "/in",
        False,
    )
    assert (tmpfs.type, tmpfs.target, tmpfs.size, tmpfs.readonly) == (
        "tmpfs",
        "/t",
        64 << 20,
        False,
    )
    assert (instr.network, instr.security, instr.cmd, instr.shell_form) == (
        "host",
        "insecure",
        ("make",),
        True,
    )
    exec_form = last('RUN ["make", "all"]')
    assert (
        isinstance(exec_form, RunInstr) and exec_form.exec_form and exec_form.cmd == ("make", "all")
    )
    assert error("RUN --network=bridge x") == 'invalid network mode "bridge"'
    assert error("RUN --network=hots x") == 'invalid network mode "hots" (did you mean host?)'
    assert error("RUN --security=open x") == 'security "open" is not valid'


def test_mount_types() -> None:
    cache = parse_mount(
        "type=cache,id=go,target=/root/.cache,sharing=private,mode=0700,uid=1,gid=2"
    )
    assert (cache.cache_id, cache.sharing, cache.mode, cache.uid, cache.gid) == (
        "go",
        "private",
        0o700,
        1,
        2,
    )
    assert not cache.readonly
    secret = parse_mount("type=secret,id=aws,required,target=/s")
    assert (secret.required, secret.readonly, secret.target) == (True, True, "/s")
    assert parse_mount("type=secret,id=tok,env=TOKEN").env == "TOKEN"
    ssh = parse_mount("type=ssh,required=true")
    assert ssh.type == "ssh" and ssh.required
    bind = parse_mount("target=/x")
    assert bind.type == "bind" and bind.readonly
    assert parse_mount('"type=bind","target=/a,b"').target == "/a,b"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=volume,target=/x", 'unsupported mount type "volume"'),
        ("type=cahce,target=/x", 'unsupported mount type "cahce" (did you mean cache?)'),
        ("type=cache,target=/x,sharing=all", 'unsupported sharing value "all"'),
        ("type=cache,targte=/x", "unexpected key 'targte' in 'targte=/x' (did you mean target?)"),
        ("type=bind,target=/x,mode=0700", 'mode not allowed for "bind" type mounts'),
        ("type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
        ("type=cache,target=/x,size=1m", "unexpected key 'size' for mount type 'cache'"),
        ("type=tmpfs,target=/x,size=lots", "invalid value for size: lots"),
        ("type=cache,target=/x,mode=999", "invalid value 999 for mode"),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=bind,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("type=secret", "invalid secret mount. one of source, target required"),
        ("type=secret,id=a,source=b", "both source and id can't be set"),
        ("type=secret,id=a,from=x", "secret mount should not have a from"),
        ("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
        (
            "type=bind,from=$STAGE,target=/x",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
    ],
)
def test_mount_errors(spec: str, message: str) -> None:
    with pytest.raises(MountError) as info:
        parse_mount(spec)
    assert str(info.value) == message
    assert error(f"RUN --mount={spec} true") == message


def test_mount_values_with_variables_are_deferred() -> None:
    m = parse_mount("type=cache,target=$HOME/.cache,mode=$MODE")
    assert m.deferred == ("target", "mode") and m.target == "$HOME/.cache"
    expanded = parse_mount(
        m.spec, expand=lambda v: v.replace("$HOME", "/root").replace("$MODE", "0755")
    )
    assert (expanded.target, expanded.mode, expanded.deferred) == ("/root/.cache", 0o755, ())


def test_parse_size() -> None:
    assert [parse_size(s) for s in ("100", "1k", "64m", "1.5g", "2GiB", "3mb")] == [
        100,
        1024,
        64 << 20,
        3 << 29,
        2 << 30,
        3 << 20,
    ]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("5s", 5_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("-2ms", -2_000_000),
        ("+300ns", 300),
        ("1us", 1000),
        ("1\u00b5s", 1000),
        (".5s", 500_000_000),
        ("1h2m3.25s", 3_723_250_000_000),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("5", 'time: missing unit in duration "5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("s", 'time: invalid duration "s"'),
        (".s", 'time: invalid duration ".s"'),
        ("9999999999h", 'time: invalid duration "9999999999h"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_format_duration() -> None:
    assert [format_duration(n) for n in (0, 90_000_000_000, 500_000_000, 3_723_250_000_000)] == [
        "0s",
        "1m30s",
        "500ms",
        "1h2m3.25s",
    ]


def test_healthcheck_flags() -> None:
    instr = last(
        "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s "
        "--retries=5 CMD curl -f http://localhost/"
    )
    assert isinstance(instr, HealthcheckInstr)
    assert instr.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert (
        instr.interval,
        instr.timeout,
        instr.start_period,
        instr.start_interval,
        instr.retries,
    ) == (
        30_000_000_000,
        3_000_000_000,
        60_000_000_000,
        2_000_000_000,
        5,
    )
    exec_form = last('HEALTHCHECK CMD ["/bin/check", "-q"]')
    assert exec_form.test == ("CMD", "/bin/check", "-q")  # type: ignore[attr-defined]  # a HealthcheckInstr
    assert last("HEALTHCHECK NONE").test == ("NONE",)  # type: ignore[attr-defined]  # a HealthcheckInstr
    assert last("HEALTHCHECK --interval=0s CMD x").interval == 0  # type: ignore[attr-defined]  # a HealthcheckInstr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HEALTHCHECK --interval=10 CMD x", 'time: missing unit in duration "10"'),
        ("HEALTHCHECK --timeout=10us CMD x", 'Interval "timeout" cannot be less than 1ms'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=two CMD x", 'strconv.ParseInt: parsing "two": invalid syntax'),
        ("HEALTHCHECK --retires=1 CMD x", "unknown flag: --retires (did you mean --retries?)"),
        ("HEALTHCHECK CONNECT TCP 7000", 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ],
)
def test_healthcheck_errors(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize(
    "src",
    [
        "https://example.com/a.tgz",
        "http://example.com/a",
        "https://github.com/moby/buildkit.git#v0.13.0",
        "git@github.com:moby/buildkit.git",
        "git://example.com/repo",
        "ssh://git@example.com/repo.git",
        "github.com/moby/buildkit",
        "https://$HOST/a",  # decided after expansion
        "${URL}",
    ],
)
def test_add_checksum_with_remote_sources(src: str) -> None:
    digest = "sha256:" + "1" * 64
    instr = last(f"ADD --checksum={digest} {src} /dst")
    assert isinstance(instr, AddInstr) and instr.checksum == digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ADD --checksum=sha256:{h} a.tgz /", "checksum requires HTTP(S) or Git sources"),
        ("ADD --checksum=sha256:{h} HTTPS://x/a /", "checksum requires HTTP(S) or Git sources"),
        ("ADD --checksum=sha256:{h} ./x.git /", "checksum requires HTTP(S) or Git sources"),
        (
            "ADD --checksum=sha256:{h} https://x/a https://x/b /",
            "checksum can't be specified for multiple sources",
        ),
        ("ADD --checksum=md5:0 a /", "checksum requires HTTP(S) or Git sources"),
        (
            "ADD --checksum=sha256:{h} <<EOF /x\nhi\nEOF",
            "checksum can't be specified for multiple sources",
        ),
    ],
)
def test_add_checksum_source_errors(text: str, message: str) -> None:
    assert error(text.replace("{h}", "2" * 64).replace("\\n", "\n")) == message


def test_exclude_patterns_are_checked_like_dockerignore() -> None:
    instr = last("COPY --exclude=**/*.md --exclude=!keep.md --exclude=[a-c]? . /")
    assert isinstance(instr, CopyInstr)
    assert instr.excludes == ("**/*.md", "!keep.md", "[a-c]?")
    assert error("COPY --exclude=[ . /") == "invalid --exclude pattern '[': syntax error in pattern"
    assert error("ADD --exclude=ok --exclude=a[z-a] . /") == (
        "invalid --exclude pattern 'a[z-a]': syntax error in pattern "
        "(invalid character class range)"
    )
    assert error("COPY --exclude=! . /") == 'illegal exclusion pattern: "!"'
    # a pattern with a variable is checked when the builder compiles it
    instr = last("COPY --exclude=$PAT[ . /")
    assert isinstance(instr, CopyInstr) and instr.excludes == ("$PAT[",)


@pytest.mark.parametrize(
    ("src", "http", "git"),
    [
        ("https://x/a.tgz", True, False),
        ("https://x/repo.git", True, True),
        ("https://x/repo.git#main:sub", True, True),
        ("https://x/repo.git?x=1", True, False),
        ("git@github.com:org/repo", False, True),
        ("git://host/repo", False, True),
        ("ssh://host/repo", False, True),
        ("github.com/org/repo", False, True),
        ("./repo.git", False, False),
        ("a:b", False, False),
        ("@host:x", False, False),
        ("HTTP://x/a", False, False),
    ],
)
def test_remote_source_kinds(src: str, http: bool, git: bool) -> None:
    from gantry.dockerfile.remote import is_git_source, is_http_source, is_remote_source

    assert (is_http_source(src), is_git_source(src)) == (http, git)
    assert is_remote_source(src) == (http or git)
