"""``cdp privacy``: data subject requests (export, erase) and logins, for an administrator to run.

The connection's user needs the ``cdp_admin`` role: the warehouse refuses anyone else.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from cdp import privacy
from cdp.warehouse import Actor, resolve_url


def _actor(args: argparse.Namespace) -> Actor:
    return Actor(f"cli:{args.actor or getpass.getuser()}")


def _export(args: argparse.Namespace) -> int:
    document = privacy.export_person(resolve_url(), args.person, _actor(args))
    text = json.dumps(document, indent=2, sort_keys=True, default=str)
    if args.output == "-":
        sys.stdout.write(text + "\n")
    else:
        path = Path(args.output or f"privacy-export-{args.person}.json")
        try:
            # Created here, for its owner only, from the first byte: never through a symlink an attacker
            # planted, never over an existing file (whose mode and readers we do not know).
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            print(
                f"{path} exists (or is a link): choose another --output or remove it first", file=sys.stderr
            )
            return 2
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        print(
            f"exported {len(document['people'])} person rows, {len(document['raw_records'])} raw records,"
            f" {len(document['audit_references'])} audit references to {path}"
        )
    return 0


def _erase(args: argparse.Namespace) -> int:
    if not args.yes:
        print("erasure cannot be undone: add --yes to confirm", file=sys.stderr)
        return 2
    result = privacy.erase_person(resolve_url(), args.person, args.reason, _actor(args))
    counts = ", ".join(f"{key} {value}" for key, value in sorted(result.counts.items()))
    print(f"erased person {result.person_id}: {counts}")
    return 0


def _login(args: argparse.Namespace) -> int:
    password = os.environ.get(args.password_env) if args.password_env else None
    if not password:
        password = getpass.getpass(f"password for {args.login}: ")
    privacy.create_login(
        resolve_url(), args.login, args.role, password, _actor(args), organization_id=args.organization
    )
    bound = f", bound to organisation {args.organization}" if args.organization else ""
    print(f"login {args.login} created as a member of {args.role}{bound}")
    return 0


def _handle(args: argparse.Namespace) -> int:
    try:
        return args.privacy_handler(args)
    except privacy.PersonNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 4


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("privacy", help="data subject requests (export, erase) and logins")
    parser.add_argument("--actor", help="who is acting, for the audit trail (default: the OS user)")
    actions = parser.add_subparsers(dest="action", required=True)

    export = actions.add_parser("export", help="write everything held about a person as JSON")
    export.add_argument("person", help="the person id (UUID)")
    export.add_argument("--output", help="file to write (default privacy-export-PERSON.json; - for stdout)")
    export.set_defaults(handler=_handle, privacy_handler=_export)

    erase = actions.add_parser("erase", help="erase a person's personal data, keeping the financial trail")
    erase.add_argument("person", help="the person id (UUID)")
    erase.add_argument("--reason", required=True, help="the request's reference, kept in the audit trail")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    erase.set_defaults(handler=_handle, privacy_handler=_erase)

    login = actions.add_parser("create-login", help="a login user in one application role")
    login.add_argument("login")
    login.add_argument("--role", required=True, choices=privacy.APPLICATION_ROLES)
    login.add_argument("--organization", help="the partner organisation id (cdp_partner only)")
    login.add_argument("--password-env", help="environment variable holding the password (else prompted)")
    login.set_defaults(handler=_handle, privacy_handler=_login)
