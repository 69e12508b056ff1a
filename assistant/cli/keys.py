"""Keys: public widget keys for the websites (origins) that embed the chat widget, and secret API keys (`--scope
api`: the OpenAI-compatible and conversation APIs, on the key's own conversations; `--scope feedback:write`: the same,
and its feedback may correct answers (training data); `--scope admin`: every conversation, and the sentiment API).
List them, revoke one.
Only a digest of a key is stored; the key is printed once (a widget key with the snippet for the website)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant keys create --origin https://shop.example.com --origin https://www.example.com
  assistant keys create --origin http://localhost:3000 --name "local test page" --host https://support.example.com
  assistant keys create --scope api --name "CRM integration"
  assistant keys create --scope feedback:write --name "helpdesk corrections"
  assistant keys create --scope admin --origin https://dashboard.example.com
  assistant keys list
  assistant keys revoke pk_AbCdEfG
  assistant keys identity-secret pk_AbCdEfG      # what the website signs signed-in customers with
  assistant keys identity-token pk_AbCdEfG --customer c-1003   # a token for a test page (1 hour)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common, ["--home", "--database-url"])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[common], help="a widget key for these origins, or an API key")
    create.add_argument("--scope", choices=["widget", "api", "feedback:write", "admin"],
                        default="widget", help="widget (default, public, needs --origin), api, feedback:write or "
                                               "admin (secret)")
    create.add_argument("--origin", action="append", default=[],
                        help="https://site.example (repeatable): the widget's sites, or browser apps allowed to "
                             "call the API with the key (CORS)")
    create.add_argument("--name", help="what the key is for")
    create.add_argument("--host", default=None, help="the public URL of this server, for the snippet "
                                                      "(default http://HOST:PORT from the settings)")
    actions.add_parser("list", parents=[common], help="keys with their origins (prefixes only)")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    secret = actions.add_parser("identity-secret", parents=[common],
                                help="the widget key's identity secret: the website signs its signed-in customers "
                                     "with it (data-identity-token)")
    secret.add_argument("prefix")
    token = actions.add_parser("identity-token", parents=[common], help="sign a customer's identity token with a "
                                                                        "widget key's secret (for tests)")
    token.add_argument("prefix")
    token.add_argument("--customer", required=True, help="the customer id the company's systems know")
    token.add_argument("--ttl", type=int, default=3600, help="seconds it stays valid (at most a day)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from assistant.cli.options import load_from_args
    from assistant.store import KeyProblem, open_store

    settings = load_from_args(args).settings
    store = open_store(settings)
    out, err = Console(), Console(stderr=True)
    try:
        if args.action == "create" and args.scope != "widget":
            key = store.keys.create_api_key(args.scope, args.name, args.origin)
            out.print(f"key: {key}  (shown once; only its digest is stored)", soft_wrap=True)
            print(f"send it as: Authorization: Bearer {key}")
        elif args.action == "create":
            key = store.keys.create_widget_key(args.origin, args.name)
            host = (args.host or f"http://{settings.host}:{settings.port}").rstrip("/")
            out.print(f"key: {key}  (shown once; only its digest is stored)\npaste into the website:", soft_wrap=True)
            print(f'<script src="{host}/widget.js" data-key="{key}" async></script>\n'
                  f'<noscript><a href="{host}/chat/">Chat with us</a></noscript>')
        elif args.action == "list":
            for k in store.keys.list_keys():
                state = "revoked" if k.revoked else k.scope
                print(f"{k.prefix}…\t{state}\t{k.name}\t{' '.join(k.origins)}")
        elif args.action in ("identity-secret", "identity-token"):
            from assistant.identity import deployment_secret, key_secret, sign_identity

            known = [k for k in store.keys.list_keys() if k.prefix.startswith(args.prefix) and not k.revoked
                     and k.scope == "widget"]
            if len(known) != 1:
                err.print(f"[red]error:[/red] {len(known)} active widget keys start with {args.prefix}: "
                          "give the prefix `assistant keys list` shows")
                return 2
            secret = key_secret(deployment_secret(settings.home_dir), known[0].prefix)
            print(secret if args.action == "identity-secret" else sign_identity(secret, args.customer, args.ttl))
        else:
            count = store.keys.revoke_key(args.prefix)
            if not count:
                err.print(f"[red]error:[/red] no active key starts with {args.prefix}")
                return 2
            out.print(f"revoked {count} key(s): they stop working now")
    except KeyProblem as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 2
    finally:
        store.close()
    return 0
