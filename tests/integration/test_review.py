"""The relup review (relup_review: strict | warn | off) of otp.release.upgrade on real kvstore nodes, with the
fault builds of the world (tests/world/build.py): each finding kind seen on a node, refused before any change in
strict mode (same OS pid, same releases, the code the node ran), and after a warn-mode upgrade the module still
on old code named by the post-check."""

from ansible_cli import run_module_output
from test_upgrade import SNAPSHOT, assert_ok, assert_refused, change, put_keys, unpack

TICKER = "whereis(kv_ticker)"
RELEASES = "lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])"


def kinds(result):
    return sorted((f["kind"], f["module"]) for f in result["relup_review"])


def assert_review_refused(node, version, expected, module="upgrade"):
    """Strict mode refuses the change to version with exactly the expected findings, and the node is as before:
    same OS pid, same kv_server process and code, same which_releases."""
    args = dict(relup_review="strict", **(dict(version=version) if version else {}))
    result = assert_refused(node, node.rpc(SNAPSHOT), module, ["Nothing was changed", "relup_review: warn"], **args)
    assert kinds(result) == expected
    for finding in result["relup_review"]:
        assert finding["msg"] in result["msg"] and finding["detail"]
    return result


def test_a_forgotten_module_is_refused_in_strict_and_named_after_a_warn_upgrade(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0-forgets")
    before = node.rpc(SNAPSHOT)

    rc, checked = change("upgrade", node, version="2.0.0-forgets", check=True)
    assert_ok(rc, checked)
    assert kinds(checked) == [("not_loaded", "kv_server")] and node.rpc(SNAPSHOT) == before

    refused = assert_review_refused(node, "2.0.0-forgets", [("not_loaded", "kv_server")])
    assert "{update, kv_server, {advanced, []}} to kvstore.appup" in refused["msg"]
    assert node.rpc("kvstore:version()") == '"1.0.0"'

    os_pid = node.os_pid()
    rc, result, output = run_module_output("otp.release.upgrade", dict(root=str(node.root), version="2.0.0-forgets"))
    assert_ok(rc, result)
    assert (result["changed"], result["current"], result["permanent"], result["os_pid"]) == \
        (True, "2.0.0-forgets", True, os_pid)
    assert kinds(result) == [("not_loaded", "kv_server"), ("still_old_code", "kv_server")]
    after = [f for f in result["relup_review"] if f["kind"] == "still_old_code"][0]
    assert "does not run the target's code" in after["msg"]
    assert "[WARNING]: Module kv_server does not run the target's code" in output.replace("\n", " ")
    # what the post-check says, seen on the node: kv_server runs the 1.0.0 code with the 1.0.0 state shape
    assert (node.rpc("kvstore:version()"), node.rpc("kvstore:state_shape()")) == ('"1.0.0"', "v1")
    assert node.rpc(RELEASES) == '[{"1.0.0",old},{"2.0.0-forgets",permanent}]'

    # the way down forgets kv_server too; with the review off, nothing is reported
    refused = assert_review_refused(node, None, [("not_loaded", "kv_server")], module="downgrade")
    assert "(kvstore 2.0.0-forgets -> 1.0.0)" in refused["msg"]
    rc, result = change("downgrade", node, relup_review="off")
    assert_ok(rc, result)
    assert (result["relup_review"], result["current"], result["os_pid"]) == ([], "1.0.0", os_pid)
    assert node.rpc(RELEASES) == '[{"1.0.0",permanent},{"2.0.0-forgets",old}]'


def test_each_faulty_appup_is_refused_in_strict_with_its_kind(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    for version in ("2.0.0-unadded", "2.0.0-supervisor", "2.0.0-nocodechange"):
        unpack(world, node, version)
    refused = assert_review_refused(node, "2.0.0-unadded", [("added_not_loaded", "kv_migrate")])
    assert "{add_module, kv_migrate}" in refused["msg"]
    refused = assert_review_refused(node, "2.0.0-supervisor", [("supervisor_not_updated", "kvstore_sup")])
    assert "{update, kvstore_sup, supervisor}" in refused["msg"]
    refused = assert_review_refused(node, "2.0.0-nocodechange", [("update_without_code_change", "kv_server")])
    assert "exports no code_change/3" in refused["msg"]
    assert node.rpc("kvstore:version()") == '"1.0.0"'


def test_processes_a_purge_would_kill_and_old_code_are_reported(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    unpack(world, node, "2.0.0-ticker")
    rc, result = change("upgrade", node, version="2.0.0-ticker", relup_review="strict")
    assert_ok(rc, result)
    assert result["relup_review"] == []
    unpack(world, node, "2.0.0-ticker-purge")

    # old code of kv_ticker left by a load by hand, no process on it: reported, nobody killed
    assert node.rpc("code:load_file(kv_ticker)") == "{module,kv_ticker}"
    assert_review_refused(node, "2.0.0-ticker-purge", [("old_code_present", "kv_ticker")])
    assert node.rpc("code:purge(kv_ticker)") == "false"

    # a process in kv_ticker's code: the load leaves it on old code, the brutal purge kills it
    ticker = node.rpc("element(2, kv_ticker:start())")
    assert node.rpc("kv_ticker:count()") == "0"
    refused = assert_review_refused(node, "2.0.0-ticker-purge", [("purge_kills", "kv_ticker")])
    assert ticker in refused["relup_review"][0]["detail"] and "(kv_ticker)" in refused["msg"]
    assert node.rpc(TICKER) == ticker and node.rpc("kv_ticker:count()") == "1"

    # warn mode goes ahead, and the finding comes true: the ticker is gone, its module runs the target's code
    rc, result = change("upgrade", node, version="2.0.0-ticker-purge")
    assert_ok(rc, result)
    assert kinds(result) == [("purge_kills", "kv_ticker")]
    assert node.rpc(TICKER) == "undefined"
    node.rpc("kv_ticker:start()")
    assert (node.rpc("kv_ticker:count()"), node.rpc("kv_ticker:count()")) == ("0", "2")  # the target's loop(Count + 2)
