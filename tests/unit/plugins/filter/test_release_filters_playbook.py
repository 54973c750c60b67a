# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The filters inside a real ansible-playbook run, so that their input carries ansible-core's own types:
# tagged strings and containers from inventory and set_fact, values that hostvars templates on access,
# a registered result of a skipped task. Each case is one debug task; the test reads what it printed.

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.release import __version__ as ansible_version

# tests/conftest.py points ANSIBLE_COLLECTIONS_PATH at a tree that holds this checkout as otp.release
COLLECTIONS_ROOT = os.environ["ANSIBLE_COLLECTIONS_PATH"]

INVENTORY = """
all:
  vars:
    ansible_connection: local
    erts: '13.2'
  children:
    play:
      hosts:
        app1:
          seed:
            name: kvstore
            current: '2.0.0'
            permanent: '2.0.0'
            start_version: '2.0.0'
            start_version_mismatch: false
            running: true
            releases:
              - {version: '2.0.0', state: permanent, erts: '{{ erts }}'}
              - {version: '1.9.0', state: old, erts: '{{ erts }}'}
              - {version: '1.10.0', state: old, erts: '{{ erts }}'}
        app2:
          seed:
            name: kvstore
            current: '1.0.0'
            permanent: '1.0.0'
            start_version: '1.0.0'
            start_version_mismatch: false
            running: false
            releases:
              - {version: '1.0.0', state: permanent, erts: '{{ erts }}'}
              - {version: '2.0.0', state: unpacked, erts: '{{ erts }}'}
        app3:
          seed:
            name: kvstore
            current: "{{ '2.0' ~ '.0' }}"
            permanent: '2.0.0'
            start_version: '1.0.0'
            start_version_mismatch: true
            running: true
            releases:
              - {version: '2.0.0', state: permanent, erts: '{{ erts }}'}
              - {version: '1.0.0', state: old, erts: '{{ erts }}'}
        app4:
          # no set_fact for this one: hostvars templates this string when a filter reads it
          otp_info: "{{ app4_info }}"
          app4_info:
            name: kvstore
            node: kvstore@app4
            current: '2.0.0'
            permanent: '1.0.0'
            start_version: '1.0.0'
            start_version_mismatch: false
            running: true
            releases:
              - {version: '2.0.0', state: current, erts: '13.2'}
              - {version: '1.0.0', state: permanent, erts: '13.2'}
        app5: {}
        app6: {}
    elsewhere:
      hosts:
        other:
          otp_info: {current: '0.1.0', permanent: '0.1.0', releases: []}
"""

_TAGGING_ANSIBLE = tuple(int(part) for part in ansible_version.split(".")[:2]) >= (2, 19)

PLAY_HOSTS = ["app1", "app2", "app3", "app4", "app5", "app6"]

CASES = {
    "probe_types": "hostvars['app1']['otp_info'] | probe_type_names",
    "probe_hostvars_types": "hostvars['app4']['otp_info'] | probe_type_names",
    "probe_jmespath_alone": "otp_info | probe_jmespath_alone('sort(releases[].version)')",
    "versions_by_host": "hostvars | otp.release.versions_by_host('otp_info', hosts=ansible_play_hosts)",
    "versions_by_host_every_host": "hostvars | otp.release.versions_by_host('otp_info')",
    "hosts_not_on": "hostvars | otp.release.hosts_not_on('2.0.0', 'otp_info', hosts=ansible_play_hosts)",
    "hosts_not_on_1": "hostvars | otp.release.hosts_not_on('1.0.0', 'otp_info', hosts=['app1', 'app2'])",
    "drift": "hostvars | otp.release.drift('otp_info', hosts=ansible_play_hosts)",
    "drift_none": "hostvars | otp.release.drift('otp_info', hosts=['app1'])",
    "previous_version": "hostvars | otp.release.previous_version('otp_info', hosts=ansible_play_hosts)",
    "previous_version_here": "(hostvars | otp.release.previous_version('otp_info', hosts=[inventory_hostname]))[inventory_hostname]",
    "query_one_result": "otp_info | otp.release.release_query(\"releases[?state=='old'].version\")",
    "query_function_on_tagged": "otp_info | otp.release.release_query('sort(releases[].version)')",
    "query_hostvars": "hostvars | otp.release.release_query('sort(values(@)[].current)', 'otp_info', hosts=ansible_play_hosts)",
    "query_hostvars_down": "hostvars | otp.release.release_query('values(@)[?running == `false`].node', 'otp_info', hosts=ansible_play_hosts)",
    "query_keys_every_host": "hostvars | otp.release.release_query('sort(keys(@))', 'otp_info')",
    "query_selects_nothing": "[otp_info | otp.release.release_query('no.such.key')]",
}

EXPECTED = {
    "versions_by_host": {"app1": "2.0.0", "app2": "1.0.0", "app3": "2.0.0", "app4": "2.0.0", "app5": None, "app6": None},
    "versions_by_host_every_host": {"app1": "2.0.0", "app2": "1.0.0", "app3": "2.0.0", "app4": "2.0.0", "app6": None, "other": "0.1.0"},
    "hosts_not_on": ["app2", "app5", "app6"],
    "hosts_not_on_1": ["app1"],
    "drift": {
        "app2": ["runs 1.0.0, most hosts run 2.0.0"],
        "app3": ["a cold start would boot 1.0.0, not the permanent release 2.0.0"],
        "app4": ["runs 2.0.0 but the permanent release is 1.0.0"],
        "app5": ["no release information"],
        "app6": ["no release information"],
    },
    "drift_none": {},
    "previous_version": {"app1": "1.10.0", "app2": None, "app3": "1.0.0", "app4": "1.0.0", "app5": None, "app6": None},
    "previous_version_here": "1.10.0",
    "query_one_result": ["1.9.0", "1.10.0"],
    "query_function_on_tagged": ["1.10.0", "1.9.0", "2.0.0"],
    "query_hostvars": ["1.0.0", "2.0.0", "2.0.0", "2.0.0"],
    "query_hostvars_down": ["kvstore@app2"],
    "query_keys_every_host": ["app1", "app2", "app3", "app4", "app6", "other"],
    "query_selects_nothing": [None],
}

# case -> (expression, text the failure message must contain)
ERROR_CASES = {
    "error_parse": ("otp_info | otp.release.release_query('[?current==')",
                    "release_query: '[?current==' is not a valid JMESPath expression"),
    "error_unclosed_filter": ("otp_info | otp.release.release_query(\"releases[?state=='old'\")",
                              "release_query: \"releases[?state=='old'\" is not a valid JMESPath expression"),
    "error_runtime": ("otp_info | otp.release.release_query('length(running)')",
                      "release_query: evaluating 'length(running)' failed: In function length()"),
    "error_unknown_function": ("otp_info | otp.release.release_query('no_such_function(@)')",
                               "release_query: evaluating 'no_such_function(@)' failed"),
    "error_no_var_name": ("hostvars | otp.release.versions_by_host('', hosts=ansible_play_hosts)",
                          "versions_by_host: name the variable"),
    "error_not_a_result": ("hostvars | otp.release.drift('erts', hosts=ansible_play_hosts)",
                           "drift: erts of host app1 is not an otp.release.info result but str"),
}


# A filter plugin next to the playbook shows what the filters receive: the exact types, and what
# jmespath makes of the same input without the conversion.
PROBE_FILTERS = """
import jmespath


def _type_names(value):
    names = {type(value).__name__}
    if isinstance(value, dict):
        for key, item in value.items():
            names |= _type_names(key) | _type_names(item)
    elif isinstance(value, list):
        for item in value:
            names |= _type_names(item)
    return names


def probe_type_names(value):
    return sorted(_type_names(value))


def probe_jmespath_alone(value, expression):
    try:
        return jmespath.search(expression, value)
    except jmespath.exceptions.JMESPathError as error:
        return "jmespath failed: %s" % error


class FilterModule:
    def filters(self):
        return {"probe_type_names": probe_type_names, "probe_jmespath_alone": probe_jmespath_alone}
"""


def _playbook():
    skipped_on_app6 = {
        "hosts": "app6",
        "gather_facts": False,
        "tasks": [{"name": "a skipped info task", "ansible.builtin.debug": {"msg": "x"}, "when": False, "register": "otp_info"}],
    }
    main = {
        "hosts": "play",
        "gather_facts": False,
        "tasks": [
            {
                "name": "results as set_fact leaves them",
                "ansible.builtin.set_fact": {"otp_info": "{{ seed | combine({'node': 'kvstore@' ~ inventory_hostname}) }}"},
                "when": "seed is defined",
            }
        ],
    }
    for case, expression in CASES.items():
        main["tasks"].append({"name": case, "run_once": True, "ansible.builtin.debug": {"msg": "{{ %s }}" % expression}})
    for case, (expression, _message) in ERROR_CASES.items():
        main["tasks"].append(
            {"name": case, "run_once": True, "ignore_errors": True, "ansible.builtin.debug": {"msg": "{{ %s }}" % expression}}
        )
    return [skipped_on_app6, main]


def _printed_results(stdout):
    """{task name: (status, the JSON result printed for it)} from the default callback's output.

    The status is what starts the line, "ok" or "fatal".
    """
    results = {}
    decoder = json.JSONDecoder()
    for block in stdout.split("\nTASK [")[1:]:
        name = block.split("]", 1)[0]
        if "=> {" in block:
            start = block.index("=> {")
            status = block[:start].rsplit("\n", 1)[-1].split(":", 1)[0]
            results[name] = (status, decoder.raw_decode(block[start + 3:])[0])
    return results


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    work = tmp_path_factory.mktemp("filters_playbook")
    (work / "inventory.yml").write_text(INVENTORY)
    # JSON is YAML too
    (work / "playbook.yml").write_text(json.dumps(_playbook(), indent=1))
    (work / "filter_plugins").mkdir()
    (work / "filter_plugins" / "probe.py").write_text(PROBE_FILTERS)
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    if not ansible_playbook.exists():
        ansible_playbook = shutil.which("ansible-playbook")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    run = subprocess.run(
        [str(ansible_playbook), "-i", "inventory.yml", "playbook.yml"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return _printed_results(run.stdout)


@pytest.mark.skipif(not _TAGGING_ANSIBLE, reason="ansible-core before 2.19 does not tag values")
def test_input_is_really_tagged(printed):
    plain_types = {"dict", "list", "str", "int", "float", "bool", "NoneType"}
    assert set(printed["probe_types"][1]["msg"]) - plain_types, printed["probe_types"]
    assert set(printed["probe_hostvars_types"][1]["msg"]) - plain_types, printed["probe_hostvars_types"]
    assert printed["probe_jmespath_alone"][1]["msg"].startswith("jmespath failed: In function sort()")


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_filter_in_playbook(printed, case):
    status, result = printed[case]
    assert status == "ok", result
    assert result["msg"] == EXPECTED[case]


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_filter_error_in_playbook(printed, case):
    status, result = printed[case]
    assert status == "fatal", result
    assert ERROR_CASES[case][1] in result["msg"], result["msg"]
