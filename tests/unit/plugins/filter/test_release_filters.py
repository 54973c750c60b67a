# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The filters called directly, on plain data and on data tagged by ansible-core's own YAML loader.

from __future__ import annotations

import jmespath
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader

from ansible_collections.otp.release.plugins.filter import release
from ansible_collections.otp.release.plugins.filter.release import (
    FilterModule,
    drift,
    hosts_not_on,
    previous_version,
    release_query,
    versions_by_host,
)

# hostvars-like: host -> variables; otp_info is what otp.release.info returns
HOSTVARS_YAML = """
app1:
  otp_info:
    name: kvstore
    current: '2.0.0'
    permanent: '2.0.0'
    start_version: '2.0.0'
    start_version_mismatch: false
    running: true
    node: kvstore@app1
    releases:
      - {version: '2.0.0', state: permanent, erts: '13.2'}
      - {version: '1.9.0', state: old, erts: '13.2'}
      - {version: '1.10.0', state: old, erts: '13.2'}
app2:
  otp_info:
    name: kvstore
    current: '1.0.0'
    permanent: '1.0.0'
    start_version: '1.0.0'
    start_version_mismatch: false
    running: false
    node: kvstore@app2
    releases:
      - {version: '1.0.0', state: permanent, erts: '13.2'}
      - {version: '2.0.0', state: unpacked, erts: '13.2'}
app3:
  otp_info:
    name: kvstore
    current: '2.0.0'
    permanent: '2.0.0'
    start_version: '1.0.0'
    start_version_mismatch: true
    running: true
    node: kvstore@app3
    releases:
      - {version: '2.0.0', state: permanent, erts: '13.2'}
      - {version: '1.0.0', state: old, erts: '13.2'}
app4:
  otp_info:
    name: kvstore
    current: '2.0.0'
    permanent: '1.0.0'
    start_version: '1.0.0'
    start_version_mismatch: false
    running: true
    node: kvstore@app4
    releases:
      - {version: '2.0.0', state: current, erts: '13.2'}
      - {version: '1.0.0', state: permanent, erts: '13.2'}
app5:
  otp_info: {skipped: true, changed: false}
db1:
  postgres_port: 5432
"""

PLAY = ["app1", "app2", "app3", "app4", "app5", "db1"]


@pytest.fixture(params=["plain", "tagged"])
def hostvars(request):
    if request.param == "plain":
        return yaml.safe_load(HOSTVARS_YAML)
    data = DataLoader().load(HOSTVARS_YAML)
    assert data["app1"]["otp_info"]["current"].__class__ is not str
    return data


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"release_query", "versions_by_host", "hosts_not_on", "drift", "previous_version"}


def test_versions_by_host(hostvars):
    assert versions_by_host(hostvars, "otp_info") == {
        "app1": "2.0.0", "app2": "1.0.0", "app3": "2.0.0", "app4": "2.0.0", "app5": None,
    }
    assert versions_by_host(hostvars, "otp_info", hosts=["app2", "db1", "gone"]) == {"app2": "1.0.0", "db1": None, "gone": None}
    assert versions_by_host(hostvars, "otp_info", hosts="app3") == {"app3": "2.0.0"}


def test_hosts_not_on(hostvars):
    assert hosts_not_on(hostvars, "2.0.0", "otp_info") == ["app2", "app5"]
    assert hosts_not_on(hostvars, "2.0.0", "otp_info", hosts=PLAY) == ["app2", "app5", "db1"]
    assert hosts_not_on(hostvars, "1.0.0", "otp_info", hosts=["app2"]) == []


def test_drift(hostvars):
    assert drift(hostvars, "otp_info", hosts=PLAY) == {
        "app2": ["runs 1.0.0, most hosts run 2.0.0"],
        "app3": ["a cold start would boot 1.0.0, not the permanent release 2.0.0"],
        "app4": ["runs 2.0.0 but the permanent release is 1.0.0"],
        "app5": ["no release information"],
        "db1": ["no release information"],
    }
    assert drift(hostvars, "otp_info", hosts=["app1", "app3"]) == {
        "app3": ["a cold start would boot 1.0.0, not the permanent release 2.0.0"],
    }


def test_drift_tie_takes_the_newest_version_as_majority(hostvars):
    assert drift(hostvars, "otp_info", hosts=["app1", "app2"]) == {"app2": ["runs 1.0.0, most hosts run 2.0.0"]}


def test_drift_of_nothing():
    assert drift({}, "otp_info") == {}


def test_previous_version(hostvars):
    assert previous_version(hostvars, "otp_info", hosts=PLAY) == {
        "app1": "1.10.0", "app2": None, "app3": "1.0.0", "app4": "1.0.0", "app5": None, "db1": None,
    }


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("app1.otp_info.releases[?state=='old'].version", ["1.9.0", "1.10.0"]),
        ("sort(app1.otp_info.releases[].version)", ["1.10.0", "1.9.0", "2.0.0"]),
        ("length(keys(@))", 6),
        ("max_by(values(@)[?otp_info.current], &otp_info.current).otp_info.node", "kvstore@app1"),
        ("nothing.here", None),
    ],
)
def test_release_query_on_any_data(hostvars, expression, expected):
    assert release_query(hostvars, expression) == expected


def test_release_query_needs_plain_types(hostvars):
    """jmespath alone fails on tagged input: the conversion is what makes the filter work."""
    expression = "sort(app1.otp_info.releases[].version)"
    if hostvars["app1"]["otp_info"]["current"].__class__ is str:
        assert jmespath.search(expression, hostvars) == ["1.10.0", "1.9.0", "2.0.0"]
    else:
        with pytest.raises(jmespath.exceptions.JMESPathTypeError):
            jmespath.search(expression, hostvars)
    assert release_query(hostvars, expression) == ["1.10.0", "1.9.0", "2.0.0"]


def test_release_query_on_hostvars(hostvars):
    assert release_query(hostvars, "sort(keys(@))", "otp_info") == ["app1", "app2", "app3", "app4", "app5"]
    assert release_query(hostvars, "sort(values(@)[].current)", "otp_info", hosts=PLAY) == ["1.0.0", "2.0.0", "2.0.0", "2.0.0"]
    assert release_query(hostvars, "values(@)[?running == `false`].node", "otp_info") == ["kvstore@app2"]
    assert release_query(hostvars, "db1", "otp_info", hosts=["db1"]) is None


@pytest.mark.parametrize(
    "expression, message",
    [
        ("[?current==", "'[?current==' is not a valid JMESPath expression"),
        ("releases[?state=='old'", "is not a valid JMESPath expression"),
        ("", "'' is not a valid JMESPath expression"),
        ("length(`1`)", "evaluating 'length(`1`)' failed: In function length()"),
        ("no_such_function(@)", "evaluating 'no_such_function(@)' failed"),
    ],
)
def test_release_query_bad_expressions(hostvars, expression, message):
    with pytest.raises(AnsibleFilterError) as caught:
        release_query(hostvars, expression)
    assert message in str(caught.value)


def test_release_query_without_jmespath(monkeypatch, hostvars):
    monkeypatch.setattr(release, "jmespath", None)
    with pytest.raises(AnsibleFilterError) as caught:
        release_query(hostvars, "keys(@)")
    assert "'keys(@)'" in str(caught.value)
    assert "jmespath is not installed" in str(caught.value)


def test_release_query_expression_must_be_text(hostvars):
    with pytest.raises(AnsibleFilterError, match="must be a string"):
        release_query(hostvars, 42)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda data: versions_by_host(data, ""), "name the variable"),
        (lambda data: drift(data, None), "name the variable"),
        (lambda data: versions_by_host(["app1"], "otp_info"), "must be hostvars or a mapping"),
        (lambda data: versions_by_host({"app1": "x"}, "otp_info"), "variables of host app1 are not a mapping"),
        (lambda data: versions_by_host(data, "postgres_port"), "postgres_port of host db1 is not an otp.release.info result"),
        (lambda data: hosts_not_on(data, "", "otp_info"), "give the version"),
        (lambda data: release_query(data, "@", hosts=["app1"]), "name the variable"),
    ],
)
def test_usage_errors(hostvars, call, message):
    with pytest.raises(AnsibleFilterError) as caught:
        call(hostvars)
    assert message in str(caught.value)
