"""Preflight of upgrade/downgrade: direction, default downgrade target, relup paths, restart kind."""

import pytest

from ansible_collections.otp.release.plugins.module_utils._change import plan_change
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError, explain
from ansible_collections.otp.release.plugins.module_utils._relfiles import instruction_summary

RELUP_2 = """{"2.0.0",
 [{"1.0.0",[],[{load_object_code,{kvstore,"2.0.0",[kv_server]}},point_of_no_return,
   {suspend,[kv_server]},{load,{kv_server,brutal_purge,brutal_purge}},{code_change,up,[{kv_server,[]}]},{resume,[kv_server]}]}],
 [{"1.0.0",[],[{load_object_code,{kvstore,"1.0.0",[kv_server]}},point_of_no_return,
   {suspend,[kv_server]},{code_change,down,[{kv_server,[]}]},{load,{kv_server,brutal_purge,brutal_purge}},{resume,[kv_server]}]}]}.
"""
RELUP_3 = """{"3.0.0", [{"2.0.0",[],[point_of_no_return]}], [{"2.0.0",[],[point_of_no_return]}]}.\n"""
RELUP_RESTART = """{"1.2.0", [{"1.0.0",[],[point_of_no_return,restart_emulator]}], [{"1.0.0",[],[point_of_no_return,restart_emulator]}]}.\n"""


NODE = "kv@127.0.0.1"


@pytest.fixture
def release(tmp_path, relup_root):
    release = relup_root(tmp_path, {"1.0.0": None, "2.0.0": RELUP_2, "3.0.0": RELUP_3, "1.2.0": RELUP_RESTART})
    return release


def test_upgrade_plan_reads_the_up_script(release):
    plan = plan_change(release, NODE, {"1.0.0": "permanent", "2.0.0": "unpacked"}, "2.0.0", "up")
    assert (plan.from_version, plan.to_version, plan.direction, plan.restart) == ("1.0.0", "2.0.0", "up", "none")
    assert instruction_summary(plan.instructions)["code_change"] == 1


def test_downgrade_plan_reads_the_running_versions_down_script(release):
    plan = plan_change(release, NODE, {"1.0.0": "old", "2.0.0": "permanent"}, "1.0.0", "down")
    assert plan.direction == "down" and ("code_change" in instruction_summary(plan.instructions))


def test_downgrade_default_is_the_newest_old_release_below_current(release):
    plan = plan_change(release, NODE, {"1.0.0": "old", "2.0.0": "old", "3.0.0": "permanent"}, None, "down")
    assert plan.to_version == "2.0.0"


def test_downgrade_without_an_old_release_says_so(release):
    with pytest.raises(OtpReleaseError, match="has no old release below it"):
        plan_change(release, NODE, {"1.0.0": "permanent", "2.0.0": "unpacked"}, None, "down")


@pytest.mark.parametrize("states, version, direction, words", [
    ({"1.0.0": "old", "2.0.0": "permanent"}, "1.0.0", "up", "use otp.release.downgrade"),
    ({"1.0.0": "permanent", "2.0.0": "unpacked"}, "2.0.0", "down", "use otp.release.upgrade"),
    ({"1.0.0": "permanent"}, "2.0.0", "up", "is not unpacked on node kv@127.0.0.1"),
    ({"1.0.0": "permanent", "3.0.0": "unpacked"}, "3.0.0", "up", "3.0.0/relup has no upgrade path from 1.0.0 (it has up from: 2.0.0)"),
    ({"1.0.0": "permanent", "2.0.0": "unpacked"}, "1.0.0x", "up", "is not unpacked"),
])
def test_refusals_name_the_problem(release, states, version, direction, words):
    with pytest.raises(OtpReleaseError) as info:
        plan_change(release, NODE, states, version, direction)
    assert words in info.value.msg


def test_missing_relup_file_is_named(release, tmp_path):
    (tmp_path / "releases" / "2.0.0" / "relup").unlink()
    with pytest.raises(OtpReleaseError, match="2.0.0/relup is missing"):
        plan_change(release, NODE, {"1.0.0": "permanent", "2.0.0": "unpacked"}, "2.0.0", "up")


def test_already_there_is_no_change(release):
    assert plan_change(release, NODE, {"1.0.0": "permanent"}, "1.0.0", "up").direction == "none"


def test_restart_emulator_is_seen_in_the_relup(release):
    assert plan_change(release, NODE, {"1.0.0": "permanent", "1.2.0": "unpacked"}, "1.2.0", "up").restart == "emulator"


def test_errors_become_sentences():
    assert explain(parse('{no_matching_relup, "3.0.0", "1.0.0"}')) == "the relup has no path to 3.0.0 from 1.0.0"
    assert "release_handler returned {weird,1}" == explain(parse("{weird, 1}"))


def test_a_crash_in_code_change_names_module_process_and_reason():
    text = explain(parse('{code_change_failed, <0.287.0>, kv_server, "1.0.0", '
                         '{\'EXIT\', {boom_in_code_change, [{kv_server, code_change, 3, [{file, "kv_server.erl"}]}]}}}'))
    assert text == "code_change of module kv_server (version 1.0.0) crashed in process <0.287.0>: boom_in_code_change"


def test_a_crash_term_with_a_tuple_first_is_still_explained():
    assert "release_handler returned" in explain(parse("{{case_clause,{error,eperm}},[]}"))
