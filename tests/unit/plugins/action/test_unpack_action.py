"""The unpack and upgrade action plugins without a host: what they check on the controller, how often they run the
module (once when the host has the version, twice when it needs the tarball, once and nothing sent in check mode),
when they send the tarball, and the signature kinds (Ed25519, ECDSA P-256, RSA 2048)."""

import base64
import gzip
import hashlib
import io
import os
import tarfile
from unittest.mock import MagicMock

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ansible_collections.otp.release.plugins.action.unpack import ActionModule
from ansible_collections.otp.release.plugins.action.upgrade import ActionModule as UpgradeAction
from ansible_collections.otp.release.plugins.plugin_utils import _signature

REL = '{release,{"kvstore","2.0.0"},{erts,"13.1.5"},[{kernel,"8.5.3"},{kvstore,"2.0.0"}]}.\n'


def write_tarball(path, extra=()):
    files = [("releases/2.0.0/kvstore.rel", REL.encode()), ("erts-13.1.5/bin/beam.smp", b"\x7fELF"),
             ("lib/kvstore-2.0.0/ebin/kvstore.app", b"{application,kvstore,[]}.\n")] + list(extra)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return str(path)


@pytest.fixture
def tarball(tmp_path):
    return write_tarball(tmp_path / "kvstore-2.0.0.tar.gz")


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Host(object):
    """The module's answers. The first run names the controller's file (remote_src false): the module answers
    from what the host has, or fails with tarball_needed; the second run has the sent file (remote_src true)."""

    def __init__(self, known=False, staged=False, fails=False, check_mode=False):
        self.known, self.staged, self.fails, self.check_mode = known, staged, fails, check_mode
        self.calls = []

    def execute(self, module_name, module_args, task_vars):
        self.calls.append((module_name, dict(module_args)))
        if self.fails:
            return dict(failed=True, msg="No node answers for /srv/kv: start the node.")
        if self.known:
            return dict(changed=False, method="none", version=module_args.get("version"))
        if module_args.get("remote_src") or self.staged or self.check_mode:
            return dict(changed=True, method="release_handler", version=module_args.get("version"), src=module_args["src"])
        return dict(failed=True, tarball_needed=True, msg="Version %s of kvstore is not on the host yet." % module_args["version"])


def make_action(args, host, check_mode=False, action_class=ActionModule):
    task = MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.async_val = 0
    connection = MagicMock()
    connection._shell.tmpdir = None
    connection._shell.join_path = os.path.join
    loader = MagicMock()
    loader.get_real_file = lambda path, decrypt=True: path
    action = action_class(task, connection, MagicMock(check_mode=check_mode), loader, templar=None, shared_loader_obj=None)
    action._find_needle = lambda dirname, needle: needle
    action._execute_module = MagicMock(side_effect=host.execute)
    action._transfer_file = MagicMock()
    action._fixup_perms2 = MagicMock()
    action._remove_tmp_path = MagicMock()
    action._make_tmp_path = MagicMock(side_effect=lambda: setattr(connection._shell, "tmpdir", "/remote/tmp/ansible-tmp-1"))
    return action


def make_upgrade_action(args, host):
    return make_action(args, host, action_class=UpgradeAction)


def test_known_version_sends_nothing(tarball):
    host = Host(known=True)
    action = make_action(dict(root="/srv/kv", src=tarball), host)
    result = action.run(task_vars={})
    assert (result["changed"], result["transferred"]) == (False, False)
    assert "tarball_needed" not in result
    assert len(host.calls) == action._execute_module.call_count == 1
    name, args = host.calls[0]
    assert name == "otp.release.unpack"
    assert (args["src"], args.get("remote_src", False)) == (tarball, False)  # the controller's path: only a name for messages
    assert (args["name"], args["version"], args["checksum"]) == ("kvstore", "2.0.0", "sha256:" + sha256_of(tarball))
    action._transfer_file.assert_not_called()
    action._make_tmp_path.assert_not_called()


def test_unknown_version_is_sent_then_unpacked(tarball):
    host = Host()
    action = make_action(dict(root="/srv/kv", src=tarball, cookie="secret"), host)
    result = action.run(task_vars={})
    assert (result["changed"], result["transferred"]) == (True, True)
    assert not result.get("failed") and "tarball_needed" not in result
    assert len(host.calls) == action._execute_module.call_count == 2
    remote = "/remote/tmp/ansible-tmp-1/kvstore-2.0.0.tar.gz"
    action._transfer_file.assert_called_once_with(tarball, remote)
    first, second = host.calls[0][1], host.calls[1][1]
    assert (first["src"], first.get("remote_src", False)) == (tarball, False)
    assert (second["src"], second["remote_src"], second["cookie"]) == (remote, True, "secret")
    assert (second["name"], second["version"], second["checksum"]) == ("kvstore", "2.0.0", "sha256:" + sha256_of(tarball))
    assert "preflight_only" not in first and "preflight_only" not in second
    action._remove_tmp_path.assert_called_once()


def test_a_tarball_already_placed_on_the_host_is_used(tarball):
    """The module finds releases/<vsn>/<name>.tar.gz with the checksum it was given and unpacks that: one run."""
    host = Host(staged=True)
    action = make_action(dict(root="/srv/kv", src=tarball), host)
    result = action.run(task_vars={})
    assert (result["changed"], result["transferred"]) == (True, False)
    assert action._execute_module.call_count == 1
    action._transfer_file.assert_not_called()


def test_check_mode_sends_nothing(tarball):
    host = Host(check_mode=True)
    action = make_action(dict(root="/srv/kv", src=tarball), host, check_mode=True)
    result = action.run(task_vars={})
    assert (result["changed"], result["transferred"], result["erts_version"], result["relup_up_from"]) == (True, False, "13.1.5", [])
    assert result["sha256"] == sha256_of(tarball)
    assert len(host.calls) == action._execute_module.call_count == 1
    action._transfer_file.assert_not_called()
    action._make_tmp_path.assert_not_called()


def test_a_failure_on_the_host_sends_nothing(tarball):
    host = Host(fails=True)
    action = make_action(dict(root="/srv/kv", src=tarball), host)
    result = action.run(task_vars={})
    assert result["failed"] and "start the node" in result["msg"] and result["transferred"] is False
    assert action._execute_module.call_count == 1
    action._transfer_file.assert_not_called()


def test_upgrade_runs_its_own_module_the_same_way(tarball):
    host = Host()
    action = make_upgrade_action(dict(root="/srv/kv", src=tarball, keep=1), host)
    result = action.run(task_vars={})
    assert (result["changed"], result["transferred"]) == (True, True)
    assert [name for name, _args in host.calls] == ["otp.release.upgrade", "otp.release.upgrade"]
    assert host.calls[1][1]["keep"] == 1 and host.calls[1][1]["remote_src"] is True


def test_upgrade_without_src_runs_the_module_once(tarball):
    host = Host(known=True)
    action = make_upgrade_action(dict(root="/srv/kv", version="2.0.0"), host)
    result = action.run(task_vars={})
    assert result["transferred"] is False and host.calls == [("otp.release.upgrade", dict(root="/srv/kv", version="2.0.0"))]


def test_wrong_checksum_fails_before_the_host_is_asked(tarball):
    host = Host()
    result = make_action(dict(root="/srv/kv", src=tarball, checksum="sha256:" + "1" * 64), host).run(task_vars={})
    assert result["failed"] and result["transferred"] is False
    assert "%s does not match its checksum: expected sha256:%s, actual sha256:%s" % (tarball, "1" * 64, sha256_of(tarball)) in result["msg"]
    assert host.calls == []


def test_unsafe_tarball_fails_before_the_host_is_asked(tmp_path):
    path = write_tarball(tmp_path / "evil.tar.gz", extra=[("../evil", b"x")])
    host = Host()
    result = make_action(dict(root="/srv/kv", src=path), host).run(task_vars={})
    assert result["failed"] and "'../evil'" in result["msg"] and host.calls == []


def test_version_given_must_match_the_tarball(tarball):
    host = Host()
    result = make_action(dict(root="/srv/kv", src=tarball, version="3.0.0"), host).run(task_vars={})
    assert result["failed"] and "no release with version '3.0.0'" in result["msg"] and host.calls == []


def test_remote_src_goes_straight_to_the_module(tarball):
    host = Host()
    action = make_action(dict(root="/srv/kv", src="/var/cache/kv.tar.gz", remote_src=True, checksum="sha256:" + "a" * 64), host)
    result = action.run(task_vars={})
    assert result["transferred"] is False and len(host.calls) == 1
    assert host.calls[0][1] == dict(root="/srv/kv", src="/var/cache/kv.tar.gz", remote_src=True, checksum="sha256:" + "a" * 64)


def test_remote_src_with_signature_fetches_the_file_to_check_it(tarball, tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    signature = tmp_path / "t.sig"
    signature.write_bytes(key.sign(open(tarball, "rb").read()))
    host = Host()
    action = make_action(dict(root="/srv/kv", src="/var/cache/kv.tar.gz", remote_src=True, signature=str(signature),
                              public_key=pem(key).decode()), host)
    action._remote_expand_user = lambda path: path
    action._connection.fetch_file = MagicMock(side_effect=lambda remote, local: open(local, "wb").write(open(tarball, "rb").read()))
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert "signature" not in host.calls[0][1] and "public_key" not in host.calls[0][1]


# ---- signatures ----

def pem(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(private_key, data):
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


KEYS = {
    "Ed25519": ed25519.Ed25519PrivateKey.generate,
    "ECDSA P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RSA 2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("encoding", ["raw", "base64"])
def test_signature_kinds(tmp_path, tarball, kind, encoding):
    key = KEYS[kind]()
    raw = sign(key, open(tarball, "rb").read())
    signature = tmp_path / "t.sig"
    signature.write_bytes(raw if encoding == "raw" else base64.b64encode(raw) + b"\n")
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem(key))
    host = Host(known=True)
    result = make_action(dict(root="/srv/kv", src=tarball, signature=str(signature), public_key=str(key_file)), host).run(task_vars={})
    assert not result.get("failed"), result
    assert "signature" not in host.calls[0][1] and "public_key" not in host.calls[0][1]

    other = KEYS[kind]()
    key_file.write_bytes(pem(other))
    result = make_action(dict(root="/srv/kv", src=tarball, signature=str(signature), public_key=str(key_file)), Host()).run(task_vars={})
    assert result["failed"] and result["transferred"] is False
    assert "The signature %s does not verify %s (sha256 %s) with the public key %s (%s, SHA256:" % (
        signature, tarball, sha256_of(tarball), key_file, kind) in result["msg"]


def test_rsa_pss_signature(tmp_path, tarball):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = key.sign(open(tarball, "rb").read(), padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH), hashes.SHA256())
    assert _signature.verify_file(tarball, tarball, raw, "t.sig", pem(key), "inline").startswith("RSA 2048")


def test_ecdsa_p384_uses_sha384(tmp_path, tarball):
    key = ec.generate_private_key(ec.SECP384R1())
    raw = key.sign(open(tarball, "rb").read(), ec.ECDSA(hashes.SHA384()))
    assert _signature.verify_file(tarball, tarball, raw, "t.sig", pem(key), "inline").startswith("ECDSA P-384")


def test_unreadable_key_and_empty_signature(tarball):
    with pytest.raises(_signature.SignatureError, match="The public key k.pem cannot be read"):
        _signature.verify_file(tarball, tarball, b"sig", "t.sig", b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "k.pem")
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(_signature.SignatureError, match="The signature file t.sig is empty"):
        _signature.verify_file(tarball, tarball, b"", "t.sig", pem(key), "k.pem")


def test_missing_cryptography_is_named(monkeypatch, tarball, tmp_path):
    monkeypatch.setattr(_signature, "CRYPTOGRAPHY_IMPORT_ERROR", ImportError("No module named 'cryptography'"))
    signature = tmp_path / "t.sig"
    signature.write_bytes(b"x")
    host = Host()
    result = make_action(dict(root="/srv/kv", src=tarball, signature=str(signature), public_key="k.pem"), host).run(task_vars={})
    assert result["failed"] and "cryptography >= 3.0 is required for signature" in result["msg"] and host.calls == []


def test_signature_needs_a_public_key(tarball):
    from ansible.errors import AnsibleActionFail
    with pytest.raises(AnsibleActionFail, match="parameters are required together: signature, public_key"):
        make_action(dict(root="/srv/kv", src=tarball, signature="t.sig"), Host()).run(task_vars={})
