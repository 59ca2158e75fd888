"""``gateway._appliance.install``: the service staged under a root directory (real files,
real modes), idempotence, conffile handling, uninstall, and the generated unit checked by
systemd's own ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from gateway._appliance.install import InstallOptions, install, uninstall
from gateway._appliance.install_files import InstallError
from gateway._appliance.install_unit import SECRETS_TEMPLATE, render_unit, unit_template
from gateway._settings import default_config_path

CONFIG = default_config_path().parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(options: InstallOptions) -> dict[str, str]:
    """{target: status} of an install."""
    return {step.target: step.status for step in install(options)}


@pytest.fixture
def staged(tmp_path):
    return InstallOptions(root=tmp_path / "root")


def test_staging_creates_the_tree_with_modes_and_contents(staged):
    root = staged.root
    steps = run(staged)
    etc = root / "etc/edge-gateway"
    assert mode(etc) == 0o750 and mode(etc / "rules") == 0o750
    assert (etc / "gateway.toml").read_bytes() == (CONFIG / "gateway.toml").read_bytes()
    assert mode(etc / "gateway.toml") == 0o640
    for rule in (CONFIG / "rules").rglob("*.toml"):
        installed = etc / "rules" / rule.relative_to(CONFIG / "rules")
        assert installed.read_bytes() == rule.read_bytes() and mode(installed) == 0o640
    secrets = etc / "secrets.env"
    assert mode(secrets) == 0o600 and secrets.read_text() == SECRETS_TEMPLATE
    assert all(line.startswith("#") or not line.strip() for line in secrets.read_text().splitlines())
    assert mode(root / "var/lib/edge-gateway") == 0o750 and (root / "var/lib/edge-gateway/data").is_dir()
    unit = root / "etc/systemd/system/edge-gateway.service"
    assert mode(unit) == 0o644
    text = unit.read_text()
    assert "User=edge-gateway" in text and "ExecStart=/opt/edge-gateway/.venv/bin/gateway run" in text
    for hardening in ("NoNewPrivileges=true", "ProtectSystem=strict", "ProtectHome=true", "PrivateTmp=true",
                      "ReadWritePaths=/var/lib/edge-gateway", "CapabilityBoundingSet=\n", "LimitNOFILE=65536",
                      "TasksMax=", "MemoryMax=", "Restart=on-failure",
                      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"):
        assert hardening in text, hardening
    # Under --root nothing touches the machine: no user, no systemctl.
    assert steps["user edge-gateway"] == "skipped"
    assert steps["service edge-gateway.service"] == "skipped"
    assert not (root / "etc/passwd").exists()


def test_a_second_run_changes_nothing(staged):
    first = run(staged)
    assert "changed" in first.values()
    before = {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns) for p in staged.root.rglob("*")}
    second = run(staged)
    assert set(second.values()) <= {"ok", "skipped"}, second
    assert {p: (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in staged.root.rglob("*")} == before


def test_an_edited_config_survives_a_reinstall_with_the_default_beside_it(staged):
    run(staged)
    config = staged.root / "etc/edge-gateway/gateway.toml"
    edited = config.read_text().replace('id = "edge-demo-01"', 'id = "warehouse-7"')
    config.write_text(edited)
    (staged.root / "etc/edge-gateway/secrets.env").write_text("UPSTREAM_SECRET=s3cret\n")
    steps = list(install(staged))
    report = {s.target: s for s in steps}
    assert config.read_text() == edited
    assert config.with_name("gateway.toml.new").read_bytes() == (CONFIG / "gateway.toml").read_bytes()
    assert report["/etc/edge-gateway/gateway.toml"].status == "changed"
    assert "gateway.toml.new" in report["/etc/edge-gateway/gateway.toml"].detail
    # secrets.env: kept, and no placeholder .new beside the real secrets
    assert (staged.root / "etc/edge-gateway/secrets.env").read_text() == "UPSTREAM_SECRET=s3cret\n"
    assert not (staged.root / "etc/edge-gateway/secrets.env.new").exists()
    # and a third run is quiet again, the edit still there
    assert set(run(staged).values()) <= {"ok", "skipped"}
    assert config.read_text() == edited


def test_an_unedited_config_takes_the_new_default(staged, tmp_path):
    source = tmp_path / "config"
    shutil.copytree(CONFIG, source)
    options = InstallOptions(root=staged.root, source=source)
    run(options)
    rule = source / "rules/tmall.toml"
    rule.write_text(rule.read_text() + "\n# a newer version's default\n")
    steps = run(options)
    installed = staged.root / "etc/edge-gateway/rules/tmall.toml"
    assert steps["/etc/edge-gateway/rules/tmall.toml"] == "changed"
    assert installed.read_bytes() == rule.read_bytes()
    assert not installed.with_name("tmall.toml.new").exists()


def test_secrets_mode_is_restored(staged):
    run(staged)
    secrets = staged.root / "etc/edge-gateway/secrets.env"
    secrets.chmod(0o644)
    assert run(staged)["/etc/edge-gateway/secrets.env"] == "changed"
    assert mode(secrets) == 0o600


def test_dry_run_changes_nothing(tmp_path):
    root = tmp_path / "root"
    steps = run(InstallOptions(root=root, dry_run=True))
    assert steps["/etc/edge-gateway/gateway.toml"] == "changed"
    assert not root.exists()


def fake_program(root: Path, prefix: str = "/opt/edge-gateway") -> Path:
    venv = Path(root, *PurePosixPath(prefix).parts[1:], ".venv")
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin/gateway").write_text("#!/bin/sh\n")
    (venv / "bin/gateway").chmod(0o755)
    return venv


def test_uninstall_keeps_config_and_data_unless_purge(staged):
    venv = fake_program(staged.root)
    assert run(staged)["program /opt/edge-gateway/.venv/bin/gateway"] == "ok"
    store_file = staged.root / "var/lib/edge-gateway/data/CURRENT"
    store_file.write_text("MANIFEST-000001\n")
    steps = {s.target: s for s in uninstall(staged)}
    assert not (staged.root / "etc/systemd/system/edge-gateway.service").exists()
    assert not venv.exists() and not venv.parent.exists()
    assert store_file.read_text() == "MANIFEST-000001\n"
    assert (staged.root / "etc/edge-gateway/gateway.toml").is_file()
    assert steps["/var/lib/edge-gateway"].status == "skipped" and "kept" in steps["/var/lib/edge-gateway"].detail
    # again: nothing left to do but what is kept
    assert {s.status for s in uninstall(staged)} <= {"ok", "skipped"}
    purged = {s.target: s.status for s in uninstall(staged, purge=True)}
    assert purged["/var/lib/edge-gateway"] == purged["/etc/edge-gateway"] == "changed"
    assert not (staged.root / "var/lib/edge-gateway").exists() and not (staged.root / "etc/edge-gateway").exists()


def test_uninstall_leaves_a_prefix_that_is_not_a_venv(staged):
    stranger = staged.root / "opt/edge-gateway/.venv"
    stranger.mkdir(parents=True)
    (stranger / "precious").write_text("x")
    steps = {s.target: s.status for s in uninstall(staged)}
    assert steps["/opt/edge-gateway/.venv"] == "skipped" and (stranger / "precious").exists()


def test_real_install_stops_when_the_program_is_missing(tmp_path):
    with pytest.raises(InstallError, match=r"install\.sh"):
        list(install(InstallOptions(prefix=PurePosixPath(tmp_path / "nowhere"))))


@pytest.mark.parametrize("prefix", ["relative/path", "/opt/edge gateway", "/opt/$HOME", "/opt/../etc"])
def test_unsafe_prefixes_are_refused(prefix):
    with pytest.raises(InstallError, match="--prefix"):
        render_unit(unit_template(CONFIG), prefix=PurePosixPath(prefix), user="edge-gateway")


def test_render_sets_user_and_prefix_only():
    template = unit_template(CONFIG)
    rendered = render_unit(template, prefix=PurePosixPath("/srv/gw"), user="gw")
    body = rendered.split("\n", 2)[2]  # below the two-line "generated" header
    expected = (template.replace("User=edge-gateway", "User=gw").replace("Group=edge-gateway", "Group=gw")
                .replace("ExecStart=/opt/edge-gateway/", "ExecStart=/srv/gw/"))
    assert body == expected
    with pytest.raises(InstallError, match="User"):
        render_unit("[Service]\nExecStart=/opt/edge-gateway/.venv/bin/gateway run\n",
                    prefix=PurePosixPath("/srv/gw"), user="gw")
    with pytest.raises(InstallError, match="--user"):
        render_unit(template, prefix=PurePosixPath("/srv/gw"), user="Bad User")


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here (Debian: apt-get "
                    "install systemd; .ci/run installs it, so CI always runs this)")
def test_the_generated_unit_passes_systemd_analyze_verify(tmp_path):
    # verify needs ExecStart='s program to exist: the prefix is a real directory holding a stub
    # (with --root, systemd-analyze would look for sysinit.target under the root too).
    prefix = tmp_path / "prog"
    fake_program(Path("/"), str(prefix))
    options = InstallOptions(root=tmp_path / "root", prefix=PurePosixPath(prefix))
    run(options)
    unit = tmp_path / "root/etc/systemd/system/edge-gateway.service"
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
