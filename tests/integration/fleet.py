"""An SSH test fleet on this machine: three "hosts" on 127.0.0.2-4, each a kvstore node run by its own user.

What a real operator has, made small:
- an sshd of our own (config, host keys, pid file and log in a temp dir; the system's sshd config is not
  touched) listening on 127.0.0.2, 127.0.0.3 and 127.0.0.4 only, on a free port, key auth only;
- a login user with an SSH key and passwordless sudo (a file in /etc/sudoers.d, removed at the end);
- app users, one per host, each owning /srv/<user>/kvstore (0750), with its home in /srv/<user>;
- each node started AS its app user with relx's own `bin/kvstore daemon`, on a unique 127.0.0.1 name and a
  random cookie: the first node has its cookie only in its vm.args (`-setcookie`), the others only in the
  app user's ~/.erlang.cookie. vm.args lives outside the root (VMARGS_PATH), as configuration does.

User names carry a random suffix, so concurrent runs do not collide. Everything made here is removed by
close(): nodes stopped by their own OS pid, sshd killed by its pid, users removed with `userdel -r`.
"""

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import world as kvworld

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PRIVSEP_DIR = Path("/run/sshd")
HOST_ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
UNREACHABLE_ADDRESS = "127.0.0.5"
TARGET_PYTHON = "/usr/bin/python3"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
REL_NAME = kvworld.REL_NAME


class FleetUnavailable(Exception):
    """The machine cannot host the fleet (no root, no sshd, no useradd): the tests skip with this message."""


def missing_prerequisites():
    """Why this machine cannot host the fleet, or None."""
    if os.geteuid() != 0:
        return "the SSH fleet creates users and a sudoers file: run the tests as root"
    for program in (SSHD, SSH_KEYGEN, SFTP_SERVER, "/usr/sbin/useradd", "/usr/sbin/userdel", "/usr/bin/sudo",
                    "/usr/bin/setfacl", "/usr/sbin/runuser", TARGET_PYTHON):
        if not os.access(program, os.X_OK):
            return "%s is missing (tests/run.sh installs openssh-server, sudo and acl)" % program
    for address in HOST_ADDRESSES:
        try:
            with socket.socket() as probe:
                probe.bind((address, 0))
        except OSError as exc:
            return "cannot listen on %s: %s" % (address, exc)
    return None


def run(argv, **kwargs):
    """Run a set-up command; its output is shown when it fails."""
    done = subprocess.run([str(arg) for arg in argv], stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(map(str, argv)), done.returncode, done.stdout))
    return done.stdout


def processes(wanted):
    """Pids of live processes for which wanted(real uid, raw command line) is true."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/status" % entry) as status:
                uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read()
        except (OSError, StopIteration):
            continue
        if wanted(uid, cmdline) and kvworld.pid_alive(int(entry)):
            found.append(int(entry))
    return found


def free_port_on_all(addresses):
    """A TCP port free on every address."""
    for _attempt in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as probe:
                    probe.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on all of %s" % (addresses,))


class Host(object):
    """One host of the fleet: its address, app user, release root and node."""

    def __init__(self, name, address, user, cookie_in_vm_args):
        self.name = name
        self.address = address
        self.user = user
        self.home = Path("/srv") / user
        self.root = self.home / REL_NAME
        self.node = "kv_%s@127.0.0.1" % user
        self.cookie = secrets.token_hex(16)
        self.cookie_in_vm_args = cookie_in_vm_args
        self.vm_args = self.home / "vm.args"
        self.cookie_file = self.home / ".erlang.cookie"
        self.pids = []

    def node_env(self, epmd_port, database):
        """The environment the node and the app user's own relx commands run with."""
        return {"HOME": str(self.home), "USER": self.user, "LOGNAME": self.user, "PATH": SYSTEM_PATH, "LANG": "C",
                "VMARGS_PATH": str(self.vm_args), "PIPE_DIR": "%s/pipe/" % self.home,
                "ERL_EPMD_PORT": str(epmd_port), "KVSTORE_DB": str(database)}


class Fleet(object):
    """The fleet's machinery; set_up() makes it, close() removes every part of it."""

    def __init__(self, world, epmd_port):
        self.world = world
        self.epmd_port = epmd_port
        suffix = secrets.token_hex(3)
        self.suffix = suffix
        self.work = Path(tempfile.mkdtemp(prefix="otp-fleet-"))
        self.login = "otpop_" + suffix
        self.group = "otpfleet_" + suffix
        self.hosts = dict(("app%d" % index, Host("app%d" % index, address, "app%d_%s" % (index, suffix), index == 1))
                          for index, address in enumerate(HOST_ADDRESSES, 1))
        self.data_dir = Path("/srv") / ("otpfleet-data-" + suffix)
        self.database = self.data_dir / "kvstore.db"
        self.sudoers = Path("/etc/sudoers.d") / ("otp-release-fleet-" + suffix)
        self.key = self.work / "id_ed25519"
        self.known_hosts = self.work / "known_hosts"
        self.control_dir = self.work / "cp"
        self.port = None
        self.sshd = None
        self.made_privsep_dir = False
        self.users_made = []
        self.group_made = False
        self.setup_seconds = None

    # --- set up -------------------------------------------------------------------------------------

    def set_up(self):
        started = time.monotonic()
        try:
            self._make_users()
            self._start_sshd()
        except Exception:
            self.close()
            raise
        self.setup_seconds = time.monotonic() - started

    def _make_users(self):
        run(["groupadd", self.group])
        self.group_made = True
        run(["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", self.login])
        self.users_made.append(self.login)
        ssh_dir = Path("/home") / self.login / ".ssh"
        run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", self.login, "-f", self.key])
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text((self.work / "id_ed25519.pub").read_text())
        run(["chown", "-R", "%s:%s" % (self.login, self.login), ssh_dir])
        (ssh_dir / "authorized_keys").chmod(0o600)
        rule = "%s ALL=(ALL:ALL) NOPASSWD: ALL\n" % self.login
        staged = self.work / "sudoers"
        staged.write_text(rule)
        run(["/usr/sbin/visudo", "-cqf", staged])
        with os.fdopen(os.open(str(self.sudoers), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440), "w") as handle:
            handle.write(rule)
        for host in self.hosts.values():
            run(["useradd", "--create-home", "--home-dir", host.home, "--shell", "/bin/bash", "--password", "*",
                 "--groups", self.group, host.user])
            self.users_made.append(host.user)
            host.home.chmod(0o750)
        self.data_dir.mkdir(mode=0o2770)
        shutil.chown(str(self.data_dir), "root", self.group)
        self.data_dir.chmod(0o2770)

    def _start_sshd(self):
        if not PRIVSEP_DIR.is_dir():
            PRIVSEP_DIR.mkdir(mode=0o755)
            self.made_privsep_dir = True
        host_key = self.work / "ssh_host_ed25519_key"
        run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", host_key])
        self.port = free_port_on_all(HOST_ADDRESSES + (UNREACHABLE_ADDRESS,))
        config = self.work / "sshd_config"
        lines = ["ListenAddress %s:%d" % (address, self.port) for address in HOST_ADDRESSES] + [
            "HostKey %s" % host_key,
            "PidFile %s" % (self.work / "sshd.pid"),
            "AllowUsers %s" % self.login,
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin no",
            "X11Forwarding no",
            "PrintMotd no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "MaxSessions 30",
            "MaxStartups 30:30:60",
            "Subsystem sftp %s" % SFTP_SERVER,
        ]
        config.write_text("\n".join(lines) + "\n")
        run([SSHD, "-t", "-f", config])
        self.sshd = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(self.work / "sshd.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        for address in HOST_ADDRESSES:
            while True:
                try:
                    socket.create_connection((address, self.port), timeout=1).close()
                    break
                except OSError:
                    if self.sshd.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("sshd did not listen on %s:%d: %s" % (address, self.port, self.sshd_log()))
                    time.sleep(0.05)
        public = (self.work / "ssh_host_ed25519_key.pub").read_text().split()
        self.known_hosts.write_text("".join("[%s]:%d %s %s\n" % (address, self.port, public[0], public[1])
                                            for address in HOST_ADDRESSES))

    def sshd_log(self):
        path = self.work / "sshd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no sshd log)"

    # --- roots and nodes ----------------------------------------------------------------------------

    def as_user(self, host, argv, stdin=None, check=True, timeout=120):
        """Run argv as the host's app user, with the node's environment; (rc, output)."""
        env = host.node_env(self.epmd_port, self.database)
        command = ["/usr/sbin/runuser", "-u", host.user, "--", "/usr/bin/env", "-i"]
        command += ["%s=%s" % item for item in sorted(env.items())] + [str(arg) for arg in argv]
        done = subprocess.run(command, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False, cwd=str(host.home))
        if check and done.returncode != 0:
            raise RuntimeError("as %s: %s failed (exit %d): %s" % (host.user, " ".join(map(str, argv)),
                                                                   done.returncode, done.stdout))
        return done.returncode, done.stdout

    def reset(self, version="1.0.0", empty=()):
        """Every host back to a fresh root of `version` (hosts in `empty`: an empty root), node config and
        cookie written, an empty shared database; no node runs."""
        self.stop_nodes()
        if self.database.exists():
            self.database.unlink()
        with os.fdopen(os.open(str(self.database), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660), "w"):
            pass
        shutil.chown(str(self.database), "root", self.group)
        self.database.chmod(0o660)
        for host in self.hosts.values():
            for leftover in (host.root, host.home / "pipe"):
                if leftover.exists():
                    shutil.rmtree(str(leftover))
            self.as_user(host, ["/bin/mkdir", "-m", "0750", host.root])
            self._write_node_config(host)
            if host.name not in empty:
                self.deploy(host, version)

    def deploy(self, host, version):
        """Extract a world tarball into the host's root as its app user, as the operator's first install did."""
        with open(str(kvworld.tarball_path(self.world, version)), "rb") as tarball:
            self.as_user(host, ["/bin/tar", "-xzf", "-", "-C", host.root], stdin=tarball)

    def _write_node_config(self, host):
        lines = ["-name " + host.node, "-kernel inet_dist_use_interface {127,0,0,1}", "-start_epmd false"]
        if host.cookie_in_vm_args:
            lines.append("-setcookie " + host.cookie)
        self._write_as(host, host.vm_args, "\n".join(lines) + "\n", 0o600)
        if host.cookie_file.exists():
            host.cookie_file.unlink()
        if not host.cookie_in_vm_args:
            self._write_as(host, host.cookie_file, host.cookie, 0o400)

    @staticmethod
    def _write_as(host, path, text, mode):
        with os.fdopen(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as handle:
            handle.write(text)
        shutil.chown(str(path), host.user, host.user)
        os.chmod(str(path), mode)

    def relx(self, host, command, check=True):
        """`bin/kvstore <command>` run by the app user (daemon, stop, ping, versions); (rc, output)."""
        return self.as_user(host, [host.root / "bin" / REL_NAME, command], check=check)

    def start_node(self, host):
        """Start the host's node as its app user with relx's daemon; return its OS pid."""
        self.relx(host, "daemon")
        deadline = time.monotonic() + 30
        while True:
            pids = kvworld.pids_running_as(host.node)
            if pids and self.rpc(host, "init:get_status()", check=False)[1].strip() == "{started, started}":
                for pid in pids:
                    if pid not in host.pids:
                        host.pids.append(pid)
                return pids[0]
            if time.monotonic() > deadline:
                raise RuntimeError("node %s did not boot: %s" % (host.node, self.node_log(host)))
            time.sleep(0.1)

    def start_nodes(self):
        return dict((name, self.start_node(host)) for name, host in self.hosts.items())

    def rpc(self, host, expression, check=True):
        """Evaluate an expression on the host's node as its app user (relx's `eval`); (rc, output), output
        as relx prints it (~p of the term)."""
        return self.as_user(host, [host.root / "bin" / REL_NAME, "eval", expression.rstrip(". ") + "."], check=check)

    def stop_node(self, host, timeout=20):
        """Stop the node by its own OS pid: SIGTERM (init:stop), then SIGKILL."""
        pids = set(host.pids + kvworld.pids_running_as(host.node))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(kvworld.pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            if kvworld.pid_alive(pid):
                for child in list(reversed(kvworld.descendant_pids(pid))) + [pid]:
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        host.pids = []

    def stop_nodes(self):
        for host in self.hosts.values():
            self.stop_node(host)

    def node_log(self, host):
        logs = sorted((host.root / "log").glob("erlang.log.*"), key=lambda path: path.stat().st_mtime)
        return logs[-1].read_text(errors="replace")[-3000:] if logs else "(no node log)"

    def not_owned(self, host):
        """Paths under the host's root not owned by its app user (`find <root> -not -user <user>`)."""
        return run(["find", host.root, "-not", "-user", host.user]).split()

    # --- ansible ------------------------------------------------------------------------------------

    def ansible_env(self):
        """Environment for ansible runs against the fleet: SSH control sockets in our work dir."""
        return {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir)}

    def inventory(self, path, become_user="root", host_vars=None, group_vars=None):
        """Write an inventory of the fleet (group otp_release) to path and return path.

        become_user "root" or "app" (each host's own app user); host_vars {host: {var: value}} override."""
        lines = ["[otp_release]"]
        for name, host in self.hosts.items():
            variables = {
                "ansible_host": host.address,
                "ansible_port": self.port,
                "ansible_user": self.login,
                "ansible_ssh_private_key_file": self.key,
                "ansible_ssh_common_args": "'-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'" % self.known_hosts,
                "ansible_python_interpreter": TARGET_PYTHON,
                "ansible_become": "true",
                "ansible_become_user": host.user if become_user == "app" else "root",
                "otp_release_root": host.root,
            }
            variables.update((host_vars or {}).get(name, {}))
            lines.append(name + " " + " ".join("%s=%s" % item for item in variables.items()))
        variables = {"otp_release_name": REL_NAME, "otp_release_epmd_port": self.epmd_port}
        variables.update(group_vars or {})
        lines += ["", "[otp_release:vars]"] + ["%s=%s" % item for item in variables.items()]
        Path(path).write_text("\n".join(lines) + "\n")
        return Path(path)

    # --- tear down ----------------------------------------------------------------------------------

    def close(self):
        """Stop every node and sshd by pid, remove the users (with their homes and roots), the sudoers file,
        the group, the shared data and the temp dir. Collects failures and raises the first at the end."""
        errors = []

        def attempt(step, *args):
            try:
                step(*args)
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)

        attempt(self.stop_nodes)
        attempt(self._stop_leftover_processes)
        if self.sshd is not None and self.sshd.poll() is None:
            self.sshd.terminate()
            try:
                self.sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
        if self.sudoers.exists():
            attempt(self.sudoers.unlink)
        for user in reversed(self.users_made):
            attempt(self._remove_user, user)
        self.users_made = []
        if self.group_made:
            attempt(run, ["groupdel", self.group])
            self.group_made = False
        if self.data_dir.exists():
            attempt(shutil.rmtree, str(self.data_dir))
        if self.made_privsep_dir:
            attempt(PRIVSEP_DIR.rmdir)
            self.made_privsep_dir = False
        shutil.rmtree(str(self.work), ignore_errors=True)
        if errors:
            raise errors[0]

    def _stop_leftover_processes(self):
        """SSH sessions of the login user, processes of the app users and Ansible's SSH control masters
        (their sockets are in our work dir), each by its pid."""
        uids = set()
        for user in self.users_made:
            try:
                uids.add(pwd.getpwnam(user).pw_uid)
            except KeyError:
                pass
        control_dir = str(self.control_dir).encode()
        for pid in processes(lambda uid, cmdline: uid in uids or control_dir in cmdline):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while processes(lambda uid, cmdline: uid in uids) and time.monotonic() < deadline:
            time.sleep(0.1)

    @staticmethod
    def _remove_user(user):
        # sshd's session processes of the login user end with their connections; wait for them briefly,
        # as userdel refuses a user who still has processes.
        deadline = time.monotonic() + 10
        while True:
            done = subprocess.run(["userdel", "-r", user], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, check=False)
            # 12: could not remove the home directory's mail spool (none was made); not an error here
            if done.returncode in (0, 12):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("userdel -r %s failed (exit %d): %s" % (user, done.returncode, done.stdout))
            time.sleep(0.2)
