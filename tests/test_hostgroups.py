"""/etc/subgid rewritten so that the manifest's groups (then --group's) are gids 1, 2, … in rootless
containers: in order, idempotent, other users' lines untouched, refusals that write nothing."""

from __future__ import annotations

import pytest

from acap_http import hostgroups
from acap_http.errors import SetupError
from acap_http.manifest import parse

USER, UID = "acap-dockerdwrapper", 997
OTHERS = "alice:100000:65536\nbob:165536:65536\n"


def test_groups_come_first_in_order_then_a_fresh_range() -> None:
    text = hostgroups.rewritten(OTHERS, USER, UID, [("sdk", 998), ("storage", 996), ("video", 44)])
    assert text == OTHERS + f"{USER}:998:1\n{USER}:996:1\n{USER}:44:1\n{USER}:231072:65536\n"


def test_the_users_lines_are_rewritten_in_place_and_a_rerun_changes_nothing() -> None:
    before = f"alice:100000:65536\n{USER}:996:1\n{USER}:231072:65536\nbob:165536:65536\n"
    text = hostgroups.rewritten(before, USER, UID, [("sdk", 998), ("storage", 996)])
    assert text == f"alice:100000:65536\n{USER}:998:1\n{USER}:996:1\n{USER}:231072:65536\nbob:165536:65536\n"
    assert hostgroups.rewritten(text, USER, UID, [("sdk", 998), ("storage", 996)]) == text
    # the user named by uid, and duplicates, become one set of lines
    doubled = f"{UID}:231072:65536\n{USER}:231072:65536\n"
    assert hostgroups.rewritten(doubled, USER, UID, []).count("231072") == 1


def test_the_mapping_is_read_back_in_container_gids() -> None:
    text = f"{USER}:0:1\n{USER}:5:1\n{USER}:231072:65536\nalice:7:1\n"
    mapped = hostgroups.mapping(text, USER, UID)
    assert [(entry.host_gid, entry.container_gid) for entry in mapped] == [(0, 1), (5, 2)]
    assert mapped[0].name == "root"
    assert (
        hostgroups.describe(mapped) == "host groups inside containers: root -> 1, tty -> 2 (docker run --group-add N)"
    )


def test_a_gid_in_another_users_range_is_refused() -> None:
    with pytest.raises(SetupError, match=r"the group odd \(gid 100005\) lies in the subordinate gids of alice"):
        hostgroups.rewritten(OTHERS, USER, UID, [("odd", 100005)])


@pytest.mark.parametrize("name", ["Video", "a b", "x;y", "", "a" * 40, "../etc"])
def test_names_that_cannot_be_groups_are_refused(name: str) -> None:
    with pytest.raises(SetupError, match="cannot be a group's name"):
        hostgroups.checked_names([name])
    assert hostgroups.checked_names(["sdk", "storage", "sdk"]) == ("sdk", "storage")


def test_the_manifest_lists_its_groups() -> None:
    document = {
        "resources": {"linux": {"user": {"groups": ["sdk", "storage"]}}},
        "acapPackageConf": {"setup": {"appName": "a", "friendlyName": "A", "version": "1"},
                            "configuration": {"httpConfig": [], "paramConfig": []}},
    }  # fmt: skip
    assert parse(document).groups == ("sdk", "storage")
    del document["resources"]
    assert parse(document).groups == ()


def test_a_group_another_app_user_maps_too_is_mapped() -> None:
    """Two app users of one host (acap-http fleet), both members of sdk: each maps it."""
    theirs = hostgroups.rewritten(OTHERS, "acap-fleet1", 1201, [("sdk", 998)])
    ours = hostgroups.rewritten(theirs, USER, UID, [("sdk", 998), ("storage", 996)])
    assert "acap-fleet1:998:1" in ours.splitlines() and f"{USER}:998:1" in ours.splitlines()
    with pytest.raises(SetupError, match="lies in the subordinate gids"):
        hostgroups.rewritten(ours, USER, UID, [("sdk", 998), ("wide", 100010)])
