"""Authenticated, encrypted streams: ZeroMQ CURVE (CurveZMQ) with pyzmq's ``zmq.auth``.

Keys are Z85 text files as ``zmq.auth`` writes them: ``NAME.key`` (public, safe to share)
and ``NAME.key_secret`` (public + secret; keep private). The sender is the CURVE server: it
holds its secret key and a folder of the public keys of the receivers it admits (the
allow-list); a receiver holds its own secret key and the sender's public key. ZeroMQ then
encrypts every message (Curve25519, XSalsa20-Poly1305) and the sender's authenticator drops
any connection whose key is not on the list before a single message reaches it.

``python -m shared.security keygen --out DIR --name NAME`` makes a key pair.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class KeyFileError(ValueError):
    """A key file or allow-list is missing or unusable (the message says which and why)."""


def generate_keypair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write ``DIR/NAME.key`` and ``DIR/NAME.key_secret``; returns their paths."""
    if not name or "/" in name or name.startswith("."):
        raise KeyFileError(f"key name {name!r} must be a plain file name")
    directory = Path(directory)
    for existing in (directory / f"{name}.key", directory / f"{name}.key_secret"):
        if existing.exists():  # a new pair would lock out every peer that trusts the old one
            raise KeyFileError(f"{existing} already exists; remove it first or pick another name")
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(directory, name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def _load(path: str | Path, need_secret: bool) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(
            f"key file {path} does not exist (make one with: python -m "
            "shared.security keygen --out DIR --name NAME)"
        )
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError, IndexError) as error:
        raise KeyFileError(f"key file {path} is not a ZeroMQ certificate: {error}") from None
    if public is None or len(public) != 40:
        raise KeyFileError(f"key file {path} holds no valid public key")
    if need_secret and (secret is None or len(secret) != 40):
        raise KeyFileError(f"key file {path} holds no secret key (use the NAME.key_secret file)")
    return public, secret


def _require_curve() -> None:
    if not zmq.has("curve"):
        raise KeyFileError("this libzmq was built without CURVE support; --secure is unavailable")


@dataclass
class ServerSecurity:
    """The sender's side: its secret key file and the folder of admitted public keys."""

    secret_key_file: str
    allowed_keys_dir: str

    def __post_init__(self) -> None:
        _require_curve()
        self.public, self.secret = _load(self.secret_key_file, need_secret=True)
        allowed = Path(self.allowed_keys_dir)
        if not allowed.is_dir():
            raise KeyFileError(f"allow-list folder {allowed} does not exist")
        keys = sorted(allowed.glob("*.key"))
        if not keys:
            raise KeyFileError(f"allow-list folder {allowed} holds no receiver public key (*.key)")
        for key in keys:
            _load(key, need_secret=False)
        self.authenticator: ThreadAuthenticator | None = None

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` (before bind) a CURVE server that admits only listed keys."""
        if self.authenticator is None:
            self.authenticator = ThreadAuthenticator(socket.context)
            self.authenticator.start()
            self.authenticator.configure_curve(domain="*", location=str(self.allowed_keys_dir))
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def close(self) -> None:
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None


@dataclass
class ClientSecurity:
    """The receiver's side: its secret key file and the sender's public key file."""

    secret_key_file: str
    server_key_file: str

    def __post_init__(self) -> None:
        _require_curve()
        self.public, self.secret = _load(self.secret_key_file, need_secret=True)
        self.server_public, _ = _load(self.server_key_file, need_secret=False)

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` (before connect) a CURVE client of the sender."""
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_serverkey = self.server_public


def main(argv: list[str] | None = None) -> int:
    from .cli import ArgumentParser

    parser = ArgumentParser(prog="python -m shared.security", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="write NAME.key and NAME.key_secret")
    keygen.add_argument("--out", required=True, help="folder for the key files")
    keygen.add_argument("--name", required=True, help="e.g. sender or receiver1")
    args = parser.parse_args(argv)
    try:
        public, secret = generate_keypair(args.out, args.name)
    except (KeyFileError, OSError) as error:
        print(f"keygen: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {public} (public: share it) and {secret} (secret: keep it private)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
