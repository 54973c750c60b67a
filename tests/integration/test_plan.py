"""Stage, plan, then switch (otp.release.plan and the rollout playbooks that start with it) on three real nodes.

Check mode plans from the tarball on the controller when the hosts do not have the version yet, refuses what the
real run refuses with the same words, and changes nothing anywhere: every root is equal byte for byte before and
after. The real run then does what the plan said."""

import re

from test_playbooks import fleet, upgrade_vars  # noqa: F401  pylint: disable=unused-import
from test_unpack import listing

NO_PATH = re.compile(r"releases/3\.0\.0/relup has no upgrade path from 1\.0\.0 \(it has up from: 2\.0\.0\)")


def roots(fleet):
    return dict((host, listing(node.root)) for host, node in fleet.nodes.items())


def node_facts(fleet):
    return dict((host, fleet.state(host)) for host in fleet.nodes)


def test_check_mode_refuses_a_missing_path_on_every_host_as_the_real_run_does(fleet, world):
    fleet = fleet()
    before, nodes_before = roots(fleet), node_facts(fleet)
    variables = upgrade_vars(fleet, otp_release_src=str(world["3.0.0"]), otp_release_version="3.0.0")

    rc, checked = fleet.run_check("otp.release.migrate_then_upgrade", variables)
    assert rc != 0, checked
    assert "No node was changed" in checked, checked
    for host in fleet.nodes:
        assert re.search(r"%s: .*%s" % (host, NO_PATH.pattern), checked), checked
    assert roots(fleet) == before
    assert node_facts(fleet) == nodes_before
    assert fleet.migrations() == []

    rc, real = fleet.playbook("otp.release.migrate_then_upgrade", variables)
    assert rc != 0, real
    for host in fleet.nodes:
        words = re.search(r"%s: .*?(%s)" % (host, NO_PATH.pattern), real)
        assert words, real
    for host, (version, states, pid, shape) in node_facts(fleet).items():  # staged next to 1.0.0, no node changed
        assert states.pop("3.0.0") == "unpacked"
        assert (version, states, pid, shape) == nodes_before[host]
    assert fleet.migrations() == []


def test_check_mode_prints_the_plan_and_the_real_run_does_it(fleet):
    fleet = fleet()
    before, nodes_before = roots(fleet), node_facts(fleet)

    rc, checked = fleet.run_check("otp.release.plan", upgrade_vars(fleet))
    assert rc == 0, checked
    assert "Plan (check mode: nothing was changed)" in checked
    for host in fleet.nodes:
        assert re.search(r"%s\s+1\.0\.0 -> 2\.0\.0\s+hot\s+.*suspends kv_server" % host, checked), checked
    assert roots(fleet) == before
    assert node_facts(fleet) == nodes_before

    rc, real = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet))
    assert rc == 0, real
    for host in fleet.nodes:
        assert re.search(r"%s\s+1\.0\.0 -> 2\.0\.0\s+hot\s+.*suspends kv_server" % host, real), real
        version, states, pid, shape = fleet.state(host)
        assert (version, states["2.0.0"], pid, shape) == ("2.0.0", "permanent", nodes_before[host][2], "v2")


def test_check_mode_of_the_downgrade_plans_the_way_back(fleet):
    fleet = fleet(upgrade_in_inventory=False)
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet))
    assert rc == 0, output
    before, nodes_before = roots(fleet), node_facts(fleet)
    rc, checked = fleet.run_check("otp.release.downgrade", {})
    assert rc == 0, checked
    for host in fleet.nodes:
        assert re.search(r"%s\s+2\.0\.0 -> 1\.0\.0\s+hot" % host, checked), checked
    assert roots(fleet) == before and node_facts(fleet) == nodes_before
