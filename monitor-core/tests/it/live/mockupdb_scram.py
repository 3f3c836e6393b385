# A MongoDB server for the MongoDB login's tests (mockupdb): answers hello, does the server
# side of SCRAM-SHA-256 with a known salt, iteration count and password, and ping; or,
# with "pymongo-final", prints the client-final message pymongo's own SCRAM code makes.
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return client_key, server_key


def attrs(message):
    return dict(part.split("=", 1) for part in message.split(","))


def pymongo_final(user, password, nonce_hex, server_nonce, salt_b64, iterations):
    """pymongo's client-final message for these inputs (its nonce is 32 bytes, base64)."""
    import pymongo.auth_shared as shared
    from pymongo.saslprep import saslprep
    from pymongo.synchronous import auth

    shared.os.urandom = lambda n: bytes.fromhex(nonce_hex)
    nonce = base64.b64encode(bytes.fromhex(nonce_hex)).decode()
    server_first = f"r={nonce}{server_nonce},s={salt_b64},i={iterations}"
    seen = {}

    class Conn:
        auth_ctx = None

        def command(self, source, cmd):
            if "saslStart" in cmd:
                seen["first"] = bytes(cmd["payload"]).decode()
                return {"payload": server_first.encode(), "conversationId": 1, "done": False}
            final = bytes(cmd["payload"]).decode()
            seen["final"] = final
            bare = seen["first"][3:]
            without_proof = final.rsplit(",p=", 1)[0]
            auth_msg = f"{bare},{server_first},{without_proof}".encode()
            prepared = saslprep(password)
            _, server_key = keys(prepared, base64.b64decode(salt_b64), iterations)
            sig = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
            return {"payload": b"v=" + sig, "conversationId": 1, "done": True}

    cred = shared.MongoCredential("SCRAM-SHA-256", "admin", user, password, None, shared._Cache())
    auth._authenticate_scram(cred, Conn(), "SCRAM-SHA-256")
    print(json.dumps({"nonce": nonce, "server_first": server_first, "first": seen["first"], "final": seen["final"]}))


def serve(cfg):
    from bson.binary import Binary
    from mockupdb import MockupDB

    server = MockupDB(port=cfg["port"])
    server._address = ("127.0.0.1", cfg["port"])
    salt = base64.b64decode(cfg["salt"])
    state = {}

    def hello(r):
        doc = {"maxWireVersion": 21, "minWireVersion": 0}
        if cfg["role"] == "secondary":
            doc.update(isWritablePrimary=False, secondary=True, setName="rs0")
        elif cfg["role"] == "primary":
            doc.update(isWritablePrimary=True, secondary=False, setName="rs0")
        else:
            doc.update(isWritablePrimary=True)
        return r.ok(**doc)

    def fail(r, code, name, text):
        return r.reply({"ok": 0, "errmsg": text, "code": code, "codeName": name})

    def sasl_start(r):
        payload = bytes(r.doc["payload"]).decode()
        if r.doc.get("mechanism") != "SCRAM-SHA-256" or not payload.startswith("n,,"):
            return fail(r, 334, "MechanismUnavailable", "bad mechanism")
        bare = payload[3:]
        a = attrs(bare)
        if a["n"] != cfg["user"] or r.doc.get("$db") != cfg["db"]:
            return fail(r, 18, "AuthenticationFailed", "Authentication failed.")
        nonce = a["r"] + base64.b64encode(os.urandom(18)).decode()
        first = f"r={nonce},s={cfg['salt']},i={cfg['iterations']}"
        state.update(bare=bare, first=first, nonce=nonce)
        return r.ok(payload=Binary(first.encode()), conversationId=1, done=False)

    def sasl_continue(r):
        payload = bytes(r.doc["payload"]).decode()
        if payload == "":
            return r.ok(payload=Binary(b""), conversationId=1, done=True)
        a = attrs(payload)
        without_proof = payload.rsplit(",p=", 1)[0]
        if a["r"] != state["nonce"] or a["c"] != "biws":
            return fail(r, 18, "AuthenticationFailed", "Authentication failed.")
        auth_msg = f"{state['bare']},{state['first']},{without_proof}".encode()
        client_key, server_key = keys(cfg["password"], salt, cfg["iterations"])
        stored = hashlib.sha256(client_key).digest()
        proof = xor(client_key, hmac.new(stored, auth_msg, hashlib.sha256).digest())
        if base64.b64decode(a["p"]) != proof:
            return fail(r, 18, "AuthenticationFailed", "Authentication failed.")
        sig = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
        if cfg.get("bad_signature"):
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        done = not cfg.get("empty_round")
        payload = b"v=" + base64.b64encode(sig)
        return r.ok(payload=Binary(payload), conversationId=1, done=done)

    server.autoresponds("hello", hello)
    server.autoresponds("ismaster", hello)
    server.autoresponds("saslStart", sasl_start)
    server.autoresponds("saslContinue", sasl_continue)
    def ping(r):
        if cfg.get("ping_code"):
            return fail(r, cfg["ping_code"], cfg["ping_code_name"], "ping refused by the test")
        return r.ok()

    server.autoresponds("ping", ping)
    server.run()
    print("listening", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1] == "pymongo-final":
        pymongo_final(*sys.argv[2:7], int(sys.argv[7]))
    else:
        serve(json.loads(sys.argv[2]))
