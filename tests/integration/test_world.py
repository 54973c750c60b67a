"""Smoke test of the test world itself: deploy, start, use, stop a real kvstore node."""

import world as kvworld


def test_deploy_start_put_get_stop(deploy, start_node):
    root = deploy("1.0.0")
    assert (root / "releases" / "RELEASES").exists()
    node = start_node(root)
    pid = node.os_pid()
    assert kvworld.pid_alive(pid)

    assert node.rpc('kvstore:put(<<"greeting">>, <<"hello">>)') == "ok"
    assert node.rpc('kvstore:get(<<"greeting">>)') == '{ok,<<"hello">>}'
    assert node.rpc("kvstore:version()") == '"1.0.0"'
    assert node.rpc("kvstore:state_shape()") == "v1"
    assert node.rpc("kvstore:health()") == "ok"
    releases = node.rpc("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]")
    assert releases == '[{"1.0.0",permanent}]'

    node.stop()
    assert not kvworld.pid_alive(pid)
    assert not node.alive()
