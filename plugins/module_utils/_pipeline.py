# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole upgrade in one module run on one session: unpack -> verify ERTS -> change -> health -> remove."""

from __future__ import annotations

import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term, to_plain
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError, show_term
from ansible_collections.otp.release.plugins.module_utils._change import check_restart_program, plan_change, refuse_code_mismatch
from ansible_collections.otp.release.plugins.module_utils._relfiles import Relup, instruction_summary
from ansible_collections.otp.release.plugins.module_utils._remove import remove_releases
from ansible_collections.otp.release.plugins.module_utils._repair import repair_releases
from ansible_collections.otp.release.plugins.module_utils._restart import change_by_strategy
from ansible_collections.otp.release.plugins.module_utils._unpack import unpack
from ansible_collections.otp.release.plugins.module_utils._verify import verify

STEP_KEYS = ("changed", "method", "version", "erts_version", "duration_ms")


class Health(object):
    """An MFA that answers ok on a healthy node, and how long it may take (seconds)."""

    def __init__(self, module, function, args=None, timeout=10):
        if not module or not function:
            raise OtpReleaseError("health needs module and function (and optional args), e.g. {module: kvstore, function: health}.")
        self.module = module
        self.function = function
        self.args = list(args or [])
        self.timeout = timeout

    @property
    def call_text(self):
        return "%s:%s(%s)" % (self.module, self.function, ", ".join(show_term(a) for a in self.args))

    def expression(self):
        """The MFA in a process of its own, killed when it does not answer in time."""
        return (
            "begin Ref = make_ref(), "
            "{Pid, MRef} = spawn_monitor(fun() -> exit({Ref, catch erlang:apply(%s, %s, %s)}) end), "
            "receive {'DOWN', MRef, process, Pid, {Ref, Answer}} -> Answer; {'DOWN', MRef, process, Pid, Why} -> {crashed, Why} "
            "after %d -> exit(Pid, kill), {no_answer_within_ms, %d} end end"
            % (format_term(Atom(self.module)), format_term(Atom(self.function)), format_term(self.args),
               self.timeout * 1000, self.timeout * 1000))


def check_health(session, health):
    """({call, ok, answer} of the health MFA on the node, its answer as Erlang text)."""
    answer = session.call(health.expression())
    return dict(call=health.call_text, ok=answer == "ok", answer=to_plain(answer)), show_term(answer)


def _timed(step):
    started = time.monotonic()
    result = step()
    result.setdefault("duration_ms", int((time.monotonic() - started) * 1000))
    return result


def upgrade(session, version, options, source=None, health=None, keep=None, check_mode=False, strategy="hot", restart_options=None):
    """Upgrade to version, unpacking source first when given; health and keep when given; hot or by a restart as
    strategy says (a restart checks the health itself, and goes back when it fails). The result as data."""
    started = time.monotonic()
    unpacked = None
    if source is not None:
        unpacked = _timed(lambda: unpack(session, source, check_mode))
        version = source.version
        if check_mode and unpacked["changed"]:
            return _check_without_unpack(session, source, options, unpacked, started)
    try:
        return _change_after_unpack(session, version, options, source, health, keep, check_mode, unpacked, started, strategy,
                                    restart_options)
    except OtpReleaseError as exc:
        if unpacked is not None and unpacked["changed"] and not check_mode:
            # the unpack happened: the failed result must say the host changed
            exc.fields.update(changed=True, unpack=_step_fields(unpacked))
        raise


def _step_fields(unpacked):
    return dict((k, unpacked.get(k)) for k in STEP_KEYS)


def _change_after_unpack(session, version, options, source, health, keep, check_mode, unpacked, started, strategy,
                         restart_options):
    repaired = unpacked.get("repaired_releases", []) if unpacked else repair_releases(
        session, session.live("change the release of"), check_mode)[1]
    erts_checks = None
    if source is not None and session.live("change the release of").running_version != version:
        erts_checks = verify(session, version)["checks"]
    if restart_options is not None and health is not None:
        restart_options.health = lambda: check_health(session, health)
    result = change_by_strategy(session, version, "up", options, strategy, restart_options, check_mode)
    result["repaired_releases"] = repaired
    result["changed"] = result["changed"] or bool(repaired)
    if unpacked is not None:
        result["unpack"] = _step_fields(unpacked)
        result["changed"] = result["changed"] or unpacked["changed"]
    if erts_checks is not None:
        result["erts_checks"] = erts_checks
    if health is not None and not check_mode and result["method"] != "restart":
        result["health"], answer_text = check_health(session, health)
        if not result["health"]["ok"]:
            result["health_failed"] = True
            raise OtpReleaseError("Node %s runs %s now (%s), but its health check %s returned %s instead of ok. Downgrade it "
                                  "with otp.release.downgrade if it must go back."
                                  % (session.node, version, "permanent" if result["permanent"] else "current only",
                                     health.call_text, answer_text), **result)
    if keep is not None and not check_mode:
        removed = remove_releases(session, keep)
        result.update(releases=removed["releases"], removed=removed["removed"])
        result["changed"] = result["changed"] or removed["changed"]
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result


def _check_without_unpack(session, source, options, unpacked, started):
    """Check mode for a version not on the host yet: release_handler cannot check an install of it, so plan from the
    tarball's relup when the tarball is here (the action plugin does it from the controller's copy otherwise), and
    refuse what the real run would refuse."""
    live = session.live("change the release of")
    refuse_code_mismatch(live)
    result = dict(session.facts(live), changed=True, from_version=live.running_version, to_version=source.version,
                  direction="up", permanent=False, restart="unknown", instructions={},
                  unpack=_step_fields(unpacked))
    result.update(dict((k, v) for k, v in unpacked.items() if k in ("erts_version", "relup_up_from", "relup_down_to", "sha256")))
    if source.on_host:
        facts = source.facts
        relup = Relup.from_text(facts.relup, source.path, facts.version) if facts.relup else None
        relup_path = session.release.path("releases", facts.version, "relup")
        plan = plan_change(session.release, live.node, dict(live.states, **{facts.version: "unpacked"}), facts.version, "up",
                           live.broken_versions, relup_of=lambda _version: (relup, relup_path))
        check_restart_program(session, live, plan)
        result.update(restart=plan.restart, instructions=instruction_summary(plan.instructions), plan=plan.as_data(),
                      direction=plan.direction)
        result["erts_checks"] = verify(session, src=source.path, facts=facts)["checks"]
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result
