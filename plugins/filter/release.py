# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Filters over otp.release.info results. Their documentation is in the <filter name>.yml files next
# to this one.

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.otp.release.plugins.module_utils._versions import previous_version as _previous_version
from ansible_collections.otp.release.plugins.module_utils._versions import version_key
from ansible_collections.otp.release.plugins.plugin_utils._plain import to_plain

try:
    import jmespath
except ImportError:
    jmespath = None


def _info_by_host(data, var, hosts, filter_name):
    """Return {host: info result as plain types, or None} read from hostvars-like `data`.

    With `hosts`, exactly those hosts, None for one without `var`; without, every host of `data`
    that has `var`. Only `data[host][var]` is read, so hostvars templates nothing else.
    """
    if not isinstance(data, Mapping):
        raise AnsibleFilterError(
            f"{filter_name}: the input must be hostvars or a mapping of host -> variables, not {type(data).__name__}"
        )
    var = to_plain(var)
    if not isinstance(var, str) or not var:
        raise AnsibleFilterError(
            f"{filter_name}: name the variable that holds each host's otp.release.info result (var), for example"
            f" var='otp_info' with hosts=ansible_play_hosts; got {var!r}"
        )
    if hosts is None:
        wanted = None
    elif isinstance(hosts, str):
        wanted = [hosts]
    else:
        wanted = list(hosts)

    results = {}
    for host in data if wanted is None else wanted:
        host = to_plain(host)
        host_vars = data[host] if host in data else {}
        if not isinstance(host_vars, Mapping):
            raise AnsibleFilterError(f"{filter_name}: the variables of host {host} are not a mapping but {type(host_vars).__name__}")
        if var in host_vars:
            info = to_plain(host_vars[var])
            if info is not None and not isinstance(info, dict):
                raise AnsibleFilterError(
                    f"{filter_name}: {var} of host {host} is not an otp.release.info result but {type(info).__name__}"
                )
            results[host] = info
        elif wanted is not None:
            results[host] = None
    return results


def _current(info):
    return None if info is None else info.get("current")


def release_query(data, expression, var=None, hosts=None):
    """Apply a JMESPath expression to `data` converted to plain types, or to {host: data[host][var]}."""
    expression = to_plain(expression)
    if jmespath is None:
        raise AnsibleFilterError(
            f"release_query cannot evaluate {expression!r}: the Python library jmespath is not installed on"
            " the controller (pip install jmespath, in the environment that runs ansible)"
        )
    if not isinstance(expression, str):
        raise AnsibleFilterError(f"release_query: the expression must be a string, got {expression!r}")
    if var is None and hosts is None:
        subject = to_plain(data)
    else:
        subject = _info_by_host(data, var, hosts, "release_query")

    try:
        compiled = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as error:
        raise AnsibleFilterError(f"release_query: {expression!r} is not a valid JMESPath expression: {error}") from error
    try:
        return compiled.search(subject)
    except jmespath.exceptions.JMESPathError as error:
        raise AnsibleFilterError(f"release_query: evaluating {expression!r} failed: {error}") from error


def versions_by_host(data, var, hosts=None):
    """{host: the version it runs}, None for a host without information."""
    return {host: _current(info) for host, info in _info_by_host(data, var, hosts, "versions_by_host").items()}


def hosts_not_on(data, version, var, hosts=None):
    """Hosts whose current version is not `version`, including hosts without information."""
    version = to_plain(version)
    if version is None or version == "":
        raise AnsibleFilterError("hosts_not_on: give the version to look for, for example hosts_not_on('2.0.0', 'otp_info')")
    version = str(version)
    infos = _info_by_host(data, var, hosts, "hosts_not_on")
    return [host for host, info in infos.items() if _current(info) != version]


def _majority(versions):
    """The most common version; among equally common ones, the newest."""
    counts = Counter(versions)
    if not counts:
        return None
    return max(counts, key=lambda version: (counts[version], version_key(version)))


def _drift_reasons(info, majority):
    current = _current(info)
    if current is None:
        return ["no release information"]
    reasons = []
    permanent = info.get("permanent")
    start_version = info.get("start_version")
    if current != majority:
        reasons.append(f"runs {current}, most hosts run {majority}")
    if permanent is not None and current != permanent:
        reasons.append(f"runs {current} but the permanent release is {permanent}")
    if info.get("start_version_mismatch") or (start_version is not None and permanent is not None and start_version != permanent):
        reasons.append(f"a cold start would boot {start_version}, not the permanent release {permanent}")
    return reasons


def drift(data, var, hosts=None):
    """{host: [reasons]} for the hosts that are not where the others are or would boot something else."""
    infos = _info_by_host(data, var, hosts, "drift")
    majority = _majority([_current(info) for info in infos.values() if _current(info) is not None])
    reasons_by_host = {host: _drift_reasons(info, majority) for host, info in infos.items()}
    return {host: reasons for host, reasons in reasons_by_host.items() if reasons}


def previous_version(data, var, hosts=None):
    """{host: the newest old release below the current one}, as the downgrade module picks it."""
    infos = _info_by_host(data, var, hosts, "previous_version")
    return {host: _previous_version(info.get("releases") or []) if info else None for host, info in infos.items()}


class FilterModule:
    """Filters over otp.release.info results, for one host or for many through hostvars."""

    def filters(self):
        return {
            "release_query": release_query,
            "versions_by_host": versions_by_host,
            "hosts_not_on": hosts_not_on,
            "drift": drift,
            "previous_version": previous_version,
        }
