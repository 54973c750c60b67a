"""The rollout record (role otp.release.record) written by the playbooks on three real nodes: one JSON file and its
Markdown per run, after a rollout, a downgrade and a rollout stopped by a failed host, with no secret in them."""

import getpass
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# the 3-node fixture of the playbook tests
from test_playbooks import fleet, upgrade_vars  # noqa: F401  pylint: disable=unused-import


def records(directory):
    """{playbook: (record as data, markdown text)} of the record files in directory, one pair per run."""
    found = {}
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        markdown = path.with_suffix(".md").read_text()
        assert record["playbook"] not in found, "two records of one playbook: %s" % sorted(os.listdir(directory))
        found[record["playbook"]] = (record, markdown)
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        "%s.%s" % (record["id"], ext) for record, markdown in found.values() for ext in ("json", "md"))
    return found


def assert_no_secret(fleet, directory, *secret_values):
    """Neither a node's cookie nor any of secret_values is in any file of directory."""
    secret_values += tuple(node.cookie for node in fleet.nodes.values())
    for path in directory.iterdir():
        text = path.read_text()
        for value in secret_values:
            assert value not in text, "a secret is in %s" % path


def signed(tarball, tmp_path):
    """(signature path, public key path) of a detached Ed25519 signature over the tarball."""
    key = Ed25519PrivateKey.generate()
    signature = tmp_path / "release.sig"
    signature.write_bytes(key.sign(Path(tarball).read_bytes()))
    public_key = tmp_path / "release.pub"
    public_key.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return signature, public_key


def row(markdown, host):
    return [cell.strip() for cell in re.search(r"^\| %s \|.*$" % host, markdown, re.M).group(0).strip("|").split("|")]


def test_record_of_a_rollout_and_of_a_downgrade(fleet, world, tmp_path):  # noqa: F811
    fleet = fleet(upgrade_in_inventory=False)
    record_dir = tmp_path / "records"
    password = secrets.token_hex(12)
    signature, public_key = signed(world["2.0.0"], tmp_path)
    variables = upgrade_vars(fleet, otp_release_record_dir=str(record_dir), otp_release_signature=str(signature),
                             otp_release_public_key=str(public_key),
                             otp_release_environment=dict(KVSTORE_DB=str(fleet.database), KVSTORE_DB_PASSWORD=password))
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", variables)
    assert rc == 0, output

    record, markdown = records(record_dir)["migrate_then_upgrade"]
    assert record["status"] == "succeeded"
    assert record["ran_by"]["user"] == getpass.getuser()
    assert record["ran_by"]["controller"] == os.uname().nodename
    assert record["ran_by"]["inventory"] == [str(fleet.inventory)]
    assert record["started_at"] <= record["written_at"] and record["duration_s"] > 0
    assert record["release"] == dict(
        name="kvstore", version="2.0.0", src=world["2.0.0"], remote_src=False,
        sha256=hashlib.sha256(Path(world["2.0.0"]).read_bytes()).hexdigest(), signature=str(signature),
        public_key=str(public_key), public_key_sha256=hashlib.sha256(public_key.read_bytes()).hexdigest())
    assert record["migration"]["host"] == "app1" and record["migration"]["changed"] is True
    assert record["migration"]["call"].startswith("kv_migrate:run(")
    assert [h["host"] for h in record["hosts"]] == ["app1", "app2", "app3"]
    for host in record["hosts"]:
        result = host["result"]
        assert (host["status"], host["target_version"]) == ("changed", "2.0.0")
        assert (result["from_version"], result["to_version"], result["restart"]) == ("1.0.0", "2.0.0", "none")
        assert result["duration_ms"] > 0 and result["health"]["ok"] is True
        assert "invocation" not in result
        assert row(markdown, host["host"]) == [host["host"], "changed", "2.0.0", "1.0.0", "2.0.0", "none",
                                               str(result["duration_ms"]), ""]
    assert len(record["table"]) == 4 and record["table"][1].split()[:4] == ["app1", "changed", "1.0.0", "2.0.0"]
    assert "# migrate_then_upgrade: succeeded" in markdown and record["release"]["sha256"] in markdown

    rc, output = fleet.playbook("otp.release.downgrade", dict(otp_release_record_dir=str(record_dir)))
    assert rc == 0, output
    record, markdown = records(record_dir)["downgrade"]
    assert record["status"] == "succeeded" and record["migration"] is None
    assert [(h["status"], h["target_version"], h["result"]["from_version"], h["result"]["to_version"])
            for h in record["hosts"]] == [("changed", "1.0.0", "2.0.0", "1.0.0")] * 3
    assert "None ran in this run." in markdown
    assert_no_secret(fleet, record_dir, password)
    assert "KVSTORE_DB" not in (record_dir / (records(record_dir)["migrate_then_upgrade"][0]["id"] + ".json")).read_text()


def test_record_of_a_rollout_stopped_by_a_failed_host(fleet, world, tmp_path):  # noqa: F811
    fleet = fleet(host_vars={"app2": {"otp_release_src": str(world["1.1.0"]), "otp_release_version": "1.1.0"}})
    record_dir = tmp_path / "records"
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade",
                                upgrade_vars(fleet, otp_release_record_dir=str(record_dir)))
    assert rc != 0

    record, markdown = records(record_dir)["migrate_then_upgrade"]
    assert record["status"] == "failed"
    by_host = dict((h["host"], h) for h in record["hosts"])
    assert (by_host["app1"]["status"], by_host["app1"]["result"]["to_version"]) == ("changed", "2.0.0")
    assert (by_host["app2"]["status"], by_host["app2"]["target_version"]) == ("failed", "1.1.0")
    assert "restarted" in by_host["app2"]["result"]["msg"]
    assert (by_host["app3"]["status"], by_host["app3"]["result"]) == ("not reached", None)
    assert (record["release"]["version"], record["release"]["src"]) == ("2.0.0", world["2.0.0"])
    assert row(markdown, "app2")[1] == "failed" and "restarted" in row(markdown, "app2")[-1]
    assert row(markdown, "app3")[1:3] == ["not reached", "2.0.0"]
    assert "# migrate_then_upgrade: failed" in markdown
    assert_no_secret(fleet, record_dir)


def test_record_of_a_failed_migration(fleet, tmp_path):  # noqa: F811
    fleet = fleet()
    record_dir = tmp_path / "records"
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(
        fleet, otp_release_record_dir=str(record_dir), otp_release_migrate_mfa=dict(module="kv_migrate", function="fail")))
    assert rc != 0
    record, markdown = records(record_dir)["migrate_then_upgrade"]
    assert record["status"] == "failed" and record["migration"]["failed"] is True
    assert "migration_failed" in record["migration"]["msg"]
    assert [h["status"] for h in record["hosts"]] == ["not reached"] * 3
    assert "On app1: failed" in markdown
    assert_no_secret(fleet, record_dir)


def test_record_of_an_unhealthy_upgrade_rolled_back(fleet, tmp_path):  # noqa: F811
    fleet = fleet(versions=("1.0.0",))
    record_dir = tmp_path / "records"
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(
        fleet, otp_release_record_dir=str(record_dir), otp_release_rollback_on_unhealthy=True,
        otp_release_health_mfa=dict(module="kvstore", function="unhealthy")))
    assert rc != 0
    record, markdown = records(record_dir)["migrate_then_upgrade"]
    (host,) = record["hosts"]
    assert (record["status"], host["status"], host["result"]["health_failed"]) == ("failed", "failed", True)
    assert (host["rollback"]["from_version"], host["rollback"]["to_version"]) == ("2.0.0", "1.0.0")
    assert row(markdown, "app1")[-1].endswith("Rolled back to 1.0.0.")
    assert fleet.state("app1")[0] == "1.0.0"
