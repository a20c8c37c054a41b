"""One options story for every serving mode: the manifest found in one place, ``--rootful`` checked
in one place, and the application's area on the card named after the manifest's application, so
that ``up`` (through ``run``'s command line) and ``serve`` put a renamed application's data in the
same place."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from acap_http import cli, config, identity
from acap_http import manifest as manifest_module
from acap_http.errors import SetupError
from acap_http.options import HostOptions, Options, sd_card_area
from acap_http.servers import app_user
from acap_http.servers.local_front import run_arguments
from acap_http.servers.serve import ServeOptions

CARD = Path("/media/card")


@pytest.fixture
def renamed(tmp_path: Path) -> Path:
    """The shipped manifest, its application called otherapp."""
    document = json.loads(identity.MANIFEST.read_text(encoding="utf-8"))
    document["acapPackageConf"]["setup"]["appName"] = "otherapp"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert manifest_module.load(path).app_name == "otherapp"
    return path


def _front(renamed: Path, **fields: Any) -> HostOptions:
    return HostOptions(host="127.0.0.1", port=8080, app_dir=renamed.parent / "app", manifest_path=renamed, **fields)


def test_the_manifest_given_is_taken_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Options(app_dir=Path("app"), manifest_path=Path("m.json")).manifest_file() == tmp_path / "m.json"


def test_without_one_the_checkouts_manifest_is_found(tmp_path: Path) -> None:
    assert Options(app_dir=tmp_path).manifest_file() == config.find_manifest(tmp_path).resolve()
    assert config.find_manifest(tmp_path) == identity.MANIFEST


def test_a_renamed_application_gets_an_area_of_its_name_on_a_hosts_card(renamed: Path) -> None:
    options = _front(renamed, sd_card=CARD)
    assert options.card_area("otherapp") == CARD / "otherapp" == sd_card_area(CARD, "otherapp")
    application = options.application(options.manifest_file(), "otherapp")
    assert (application.sd_card_mount, application.card_area("otherapp")) == (CARD, CARD / "otherapp")


def test_without_a_card_the_area_is_the_cameras_of_the_applications_name(renamed: Path) -> None:
    options = _front(renamed)
    assert options.card_area("otherapp") is None
    application = options.application(options.manifest_file(), "otherapp")
    assert application.sd_card_mount == config.CAMERA_SD_MOUNT
    assert application.card_area("otherapp") == config.CAMERA_SD_AREAS / "otherapp"
    assert Options(app_dir=renamed.parent).card_area("otherapp") == config.CAMERA_SD_AREAS / "otherapp"


def test_an_area_given_to_run_is_kept(tmp_path: Path) -> None:
    assert Options(app_dir=tmp_path, sd_card_area=CARD / "mine").card_area("otherapp") == CARD / "mine"


@pytest.mark.parametrize("card", [CARD, None])
def test_up_and_serve_give_the_application_the_same_places(renamed: Path, card: Path | None) -> None:
    """up starts ``run`` with a command line; serve hands its worker Options: the same either way."""
    argv = ["serve", "--app-dir", str(renamed.parent / "app"), "--manifest", str(renamed)]
    argv += ["--sd-card", str(card)] if card else []
    argv += ["--tls-by", "front", "--api-client", "ops", "--api-client", "ci runner", "--api-client=-dash"]
    served = cli._parser().parse_args(argv)
    serve_options = ServeOptions(**cli._host_options_of(served))
    up_options = HostOptions(**cli._host_options_of(cli._parser().parse_args(["up", *argv[1:]])))
    for_serve = serve_options.application(serve_options.manifest_file(), "otherapp")
    run = cli._parser().parse_args(["run", *run_arguments(up_options.application(renamed, "otherapp"), "otherapp")])
    for_run = Options(
        app_dir=run.app_dir, manifest_path=run.manifest, docker_address=run.docker_address,
        tls_by=run.tls_by, api_clients=tuple(run.api_client),
        sd_card_mount=run.sd_card_mount, sd_card_area=run.sd_card_area,
    )  # fmt: skip
    assert for_run == for_serve and for_run.api_clients == ("ops", "ci runner", "-dash")
    assert for_run.card_area("otherapp") == (card or config.CAMERA_SD_AREAS) / "otherapp"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--api-client", "ops"], "--api-client needs --tls-by front"),
        (["--tls-by", "front", "--api-client", ""], "printable, not empty"),
        (["--tls-by", "front", "--api-client", "ops\x1b[2J"], "printable, not empty"),
    ],
)
def test_api_clients_need_the_front_and_names(argv: list[str], said: str) -> None:
    args = cli._parser().parse_args(["run", *argv])
    with pytest.raises(SetupError, match=said):
        Options(app_dir=Path("/nowhere"), tls_by=args.tls_by, api_clients=tuple(args.api_client))


def test_run_finds_the_cameras_area_of_its_manifest_when_none_is_given() -> None:
    args = cli._parser().parse_args(["run"])
    assert args.sd_card_area is None and args.sd_card_mount == config.CAMERA_SD_MOUNT


@pytest.mark.parametrize("command", ["up", "serve"])
def test_rootful_needs_root(renamed: Path, command: str) -> None:
    with pytest.raises(SetupError, match=f"--rootful runs the app and dockerd as root: start {command} as root"):
        _front(renamed, rootful=True).check_rootful(command, euid=lambda: 1000)
    _front(renamed, rootful=True).check_rootful(command, euid=lambda: 0)
    _front(renamed).check_rootful(command, euid=lambda: 1000)


def test_groups_without_root_are_said_to_be_ignored(
    renamed: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    manifest = manifest_module.load(renamed)
    with caplog.at_level(logging.INFO, logger=app_user.__name__):
        assert app_user.for_front(_front(renamed, groups=("video",)), manifest) is None
        assert app_user.for_front(_front(renamed, groups=("video",), rootful=True), manifest) is None
        assert app_user.for_front(_front(renamed), manifest) is None
    assert [message.split(":")[0] for message in caplog.messages] == ["Not started as root", "Rootful"]
