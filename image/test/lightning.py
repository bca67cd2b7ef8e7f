#!/usr/bin/env python3
"""A Lightning peer for the image tests, on the host: proves that a channel the box opened
before an update is usable after it and after a rollback, with its funds intact.

QEMU's user network lets the VM reach the host's loopback as 10.0.2.2. The host runs

  * the chain: a regtest-sim (plugnode's x86 build through a symlink) on 127.0.0.1:18499.
    The test image's bitcoind is a regtest-sim proxy onto it (image/test/plugnode-test.toml:
    -simupstream=10.0.2.2:18499), so the chain lives outside the VM and outlasts its reboots;
  * the peer: `plugnode run` (x86) with a Lightning node, its bitcoind a proxy onto the same
    chain, its web API on loopback.

Steps (each a command; WORK holds the processes' files and what was measured):

  lightning.py chain WORK           the chain alone, one block mined (out of initial download):
                                    what the test image's bitcoind needs (image/smoke-test.sh)
  lightning.py start WORK           chain + peer (image/update-test.sh)
  lightning.py open  WORK BOX CA PW the box's wallet, coins, a channel box -> peer, a payment
                                    each way; remembers the box's side of the channel
  lightning.py pay   WORK BOX CA PW after a restart of the box: the channel is usable again,
                                    the box's side is what it was, a payment each way
  lightning.py stop  WORK

BOX is the box's HTTPS address as the host reaches it (https://127.0.0.1:PORT), CA its
certificate authority (from /ca.crt), PW its web password. Standard library only.
"""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

CHAIN_PORT = 18499
CHAIN_AUTH = ("plugnode-image-test", "plugnode-image-test")
# A valid regtest address nobody needs the key of (BIP-173's example), for blocks.
ANYONE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
PEER_PASSWORD = "peer password for the image test"
CHANNEL_SAT = 500_000
PUSH_MSAT = 100_000_000
PAYMENT_MSAT = 1_000_000
# How the box reaches the host (QEMU's user network); 127.0.0.1 for a dry run on the host.
PEER_HOST = os.environ.get("PEER_HOST", "10.0.2.2")
TIMEOUT = 600

REPO = Path(__file__).resolve().parents[2]


def log(text):
    print(f"   lightning: {text}", flush=True)


def fail(text):
    print(f"FAIL: lightning: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, check, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(1)


# --- the chain ---------------------------------------------------------------------------

def rpc(method, params):
    request = urllib.request.Request(
        f"http://127.0.0.1:{CHAIN_PORT}/",
        data=json.dumps({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).encode(),
        headers={
            "Authorization": "Basic " + b64encode(":".join(CHAIN_AUTH).encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as err:
        answer = json.load(err)
    if answer.get("error"):
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def mine(count, address=ANYONE):
    rpc("generatetoaddress", [count, address])


# --- the boxes' APIs ---------------------------------------------------------------------

class Api:
    def __init__(self, base, password, ca=None):
        self.base = base.rstrip("/")
        self.password = password
        self.context = ssl.create_default_context(cafile=ca) if ca else None
        self.token = None

    def call(self, method, path, body=None, timeout=120):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, {"error": text.decode(errors="replace")}
        except (OSError, urllib.error.URLError) as err:
            return 0, {"error": str(err)}

    def login(self):
        def attempt():
            code, answer = self.call("POST", "/api/login", {"password": self.password})
            if code == 200:
                self.token = answer["token"]
                return True
            return False
        wait(f"a login on {self.base}", attempt)

    def ok(self, method, path, body=None):
        code, answer = self.call(method, path, body)
        if code not in (200, 202):
            fail(f"{method} {path} on {self.base} answered {code}: {answer}")
        return answer

    def status(self):
        code, answer = self.call("GET", "/api/status")
        return answer if code == 200 else None

    def wallet(self):
        """Creates the wallet unless there is one; waits until Lightning runs."""
        wait(f"bitcoind on {self.base}",
             lambda: (s := self.status()) and s["bitcoind"]["state"]["state"] in ("ready", "syncing"))
        state = self.status()["lightning"]["state"]
        if state["state"] == "waiting" and "No wallet yet" in state.get("reason", ""):
            self.ok("POST", "/api/wallet/create", {})
        wait(f"Lightning running on {self.base}",
             lambda: (s := self.status()) and s["lightning"]["state"]["state"] == "running")

    def channels(self):
        code, answer = self.call("GET", "/api/lightning/channels")
        return answer if code == 200 and isinstance(answer, list) else []

    def usable_channel(self):
        return next((c for c in self.channels() if c.get("usable")), None)

    def pay(self, other, what):
        invoice = other.ok("POST", "/api/lightning/invoices",
                           {"amount_msat": PAYMENT_MSAT, "description": what})["bolt11"]
        def attempt():
            code, answer = self.call("POST", "/api/lightning/pay", {"invoice": invoice}, timeout=180)
            if code == 200 and answer.get("status") == "succeeded":
                return True
            # An earlier attempt that looked lost went through after all.
            if answer.get("kind") == "already_paid":
                return True
            log(f"{what}: {code} {answer}; trying again")
            return False
        wait(what, attempt, timeout=300)


def peer_api(work):
    state = json.loads((work / "peer.json").read_text())
    return Api(f"http://127.0.0.1:{state['web_port']}", PEER_PASSWORD), state


# --- steps -------------------------------------------------------------------------------

def start(work, with_peer=True):
    work.mkdir(parents=True, exist_ok=True)
    plugnode = REPO / "target" / "debug" / "plugnode"
    if not plugnode.exists():
        log("building plugnode for this computer (cargo build -p plugnode)")
        subprocess.run(["cargo", "build", "-q", "-p", "plugnode", "--bin", "plugnode"],
                       cwd=REPO, check=True)
    with socket.socket() as s:
        # As the chain binds it: connections of an earlier run in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", CHAIN_PORT))
        except OSError:
            fail(f"port {CHAIN_PORT} is taken: the test image's bitcoind expects the chain there")
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    sim = bin_dir / "regtest-sim"
    if not sim.exists():
        sim.symlink_to(plugnode)
    pids = []
    (work / "chain").mkdir(exist_ok=True)
    chain = subprocess.Popen(
        [str(sim), f"-datadir={work / 'chain'}", "-regtest", f"-rpcport={CHAIN_PORT}",
         f"-port={free_port()}", "-printtoconsole", "-simwarmup=0",
         f"-rpcuser={CHAIN_AUTH[0]}", f"-rpcpassword={CHAIN_AUTH[1]}"],
        stdout=open(work / "chain.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    pids.append(chain.pid)
    (work / "pids").write_text("\n".join(map(str, pids)) + "\n")

    def chain_answers():
        try:
            return rpc("getblockcount", []) is not None
        except Exception:
            return False
    wait("the chain's regtest-sim", chain_answers, timeout=60)
    mine(1)
    if not with_peer:
        log(f"chain on 127.0.0.1:{CHAIN_PORT}")
        return

    ports = {"web_port": free_port(), "https_port": free_port(), "ln_port": free_port(),
             "rpc_port": free_port(), "p2p_port": free_port()}
    (work / "peer-password").write_text(PEER_PASSWORD)
    config = f"""[data]
dir = "{work / 'peer'}"

[bitcoind]
binary = "{sim}"
network = "regtest"
rpc_port = {ports['rpc_port']}
p2p_port = {ports['p2p_port']}
extra_args = ["-simupstream=127.0.0.1:{CHAIN_PORT}", "-simupstreamauth={CHAIN_AUTH[0]}:{CHAIN_AUTH[1]}"]

[lightning]
enabled = true
listen_port = {ports['ln_port']}

[web]
listen = "127.0.0.1:{ports['web_port']}"
https_listen = "127.0.0.1:{ports['https_port']}"
initial_password_file = "{work / 'peer-password'}"

[display]
panel = "none"

[backup]
enabled = false

[pairing]
enabled = false
"""
    (work / "peer.toml").write_text(config)
    peer = subprocess.Popen(
        [str(plugnode), "run", "--config", str(work / "peer.toml")],
        stdout=subprocess.DEVNULL, stderr=open(work / "peer.log", "w"), start_new_session=True)
    pids.append(peer.pid)
    (work / "pids").write_text("\n".join(map(str, pids)) + "\n")
    (work / "peer.json").write_text(json.dumps(ports))
    api, _ = peer_api(work)
    api.login()
    api.wallet()
    log(f"chain on 127.0.0.1:{CHAIN_PORT}, peer's Lightning node on port {ports['ln_port']}")


def open_channel(work, box):
    peer, ports = peer_api(work)
    peer.login()
    box.login()
    box.wallet()
    address = box.ok("POST", "/api/lightning/address", {})["address"]
    mine(1, address)
    mine(100)
    def funded():
        box.call("POST", "/api/lightning/sync", {})
        code, balances = box.call("GET", "/api/lightning/balances")
        return code == 200 and balances.get("onchain_spendable_sat", 0) > CHANNEL_SAT
    wait("the box's coins", funded)
    node_id = peer.ok("GET", "/api/lightning/info")["node_id"]
    box.ok("POST", "/api/lightning/channels", {
        "node_id": node_id, "address": f"{PEER_HOST}:{ports['ln_port']}",
        "amount_sat": CHANNEL_SAT, "push_msat": PUSH_MSAT})
    wait("the funding transaction", lambda: len(rpc("getrawmempool", [])) > 0)
    mine(6)
    channel = wait("the channel usable on the box", box.usable_channel)
    wait("the channel usable on the peer", peer.usable_channel)
    box.pay(peer, "box pays peer before the update")
    peer.pay(box, "peer pays box before the update")
    channel = wait("the channel after the payments", box.usable_channel)
    record = {"channel_id": channel["channel_id"], "capacity_sat": channel["capacity_sat"],
              "outbound_sat": channel["outbound_sat"]}
    (work / "channel.json").write_text(json.dumps(record))
    log(f"channel {channel['channel_id'][:16]}… open: {channel['capacity_sat']} sat, the box's "
        f"side {channel['outbound_sat']} sat; paid 1,000 sat each way")


def pay_again(work, box, when):
    peer, _ = peer_api(work)
    peer.login()
    box.login()
    before = json.loads((work / "channel.json").read_text())
    channel = wait(f"the channel usable on the box {when}", box.usable_channel)
    wait(f"the channel usable on the peer {when}", peer.usable_channel)
    if channel["channel_id"] != before["channel_id"]:
        fail(f"{when}: another channel ({channel['channel_id']}), not {before['channel_id']}")
    if (channel["capacity_sat"], channel["outbound_sat"]) != (before["capacity_sat"], before["outbound_sat"]):
        fail(f"{when}: the channel is {channel['capacity_sat']} sat with {channel['outbound_sat']} "
             f"on the box's side; before it was {before['capacity_sat']} with {before['outbound_sat']}")
    box.pay(peer, f"box pays peer {when}")
    peer.pay(box, f"peer pays box {when}")
    after = wait("the channel after the payments", box.usable_channel)
    if after["outbound_sat"] != before["outbound_sat"]:
        fail(f"{when}: after a payment each way the box's side is {after['outbound_sat']} sat, "
             f"not {before['outbound_sat']}")
    log(f"{when}: the same channel, the box's side still {after['outbound_sat']} sat; paid "
        f"1,000 sat each way")


def stop(work):
    pids = (work / "pids").read_text().split() if (work / "pids").exists() else []
    for pid in reversed(pids):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in reversed(pids):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    step, work = argv[1], Path(argv[2])
    if step in ("start", "chain"):
        start(work, with_peer=step == "start")
    elif step == "stop":
        stop(work)
    elif step in ("open", "pay"):
        if len(argv) < 6:
            print(__doc__, file=sys.stderr)
            return 2
        box = Api(argv[3], argv[5], ca=argv[4])
        if step == "open":
            open_channel(work, box)
        else:
            pay_again(work, box, argv[6] if len(argv) > 6 else "after a restart")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
